"""``robust-rl evaluate``: any SB3 model, suites by name or file, grid, attacks, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from stable_baselines3 import DQN, PPO

from robust_rl.cli import main
from robust_rl.evaluation import EvaluationResults, get_suite


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("cli_models")
    paths = []
    for name, cls in (("ppo", PPO), ("dqn", DQN)):
        path = folder / f"{name}.zip"
        cls("MlpPolicy", "robust_rl/CartPole-v1", device="cpu", seed=0).save(path)
        paths.append(str(path))
    return paths


def test_report_with_grid_and_attack(tmp_path: Path, models: list[str], capsys) -> None:
    out = tmp_path / "report"
    args = [
        "evaluate",
        *models,
        "--suite",
        "cartpole",
        "--episodes",
        "2",
        "--grid",
        "--points",
        "2",
        "--axes",
        "masspole",
        "length",
        "--grid-episodes",
        "1",
        "--attack",
        "pgd",
        "--epsilon",
        "0",
        "0.1",
        "--attack-episodes",
        "1",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| MDP | ppo | dqn |" in printed and "| heavy pole |" in printed
    assert "worst case" in printed
    for kind, exts in (
        ("suite", "json csv md"),
        ("grid", "json csv md png"),
        ("attack", "json csv md png"),
    ):
        for ext in exts.split():
            assert (out / f"{kind}.{ext}").is_file()
    attack = EvaluationResults.from_json((out / "attack.json").read_text())
    assert {(r.model, r.attack) for r in attack.rows} == {("ppo", "mad"), ("dqn", "q")}
    grid = EvaluationResults.from_json((out / "grid.json").read_text())
    assert len(grid.rows) == 2 * 4 and grid.axes == ("masspole", "length")
    # refuses to overwrite before running anything
    assert main(args) == 2
    assert "already exists; pass --force" in capsys.readouterr().err

    # `report` re-renders recorded results (also a trial's compact record) without running
    record = tmp_path / "result.json"
    record.write_text(json.dumps({"trial": {}, "evaluation": grid.to_dict(compact=True)}))
    merged = tmp_path / "merged"
    assert main(["report", str(out / "suite.json"), str(record), "--out", str(merged)]) == 0
    assert "| MDP | ppo | dqn |" in capsys.readouterr().out
    again = EvaluationResults.from_json((merged / "report.json").read_text())
    assert again.rows == (
        *EvaluationResults.from_json((out / "suite.json").read_text()).rows,
        *grid.rows,
    )
    assert (merged / "report.png").is_file() and (merged / "report.md").is_file()
    assert main(["report", str(record), "--out", str(merged)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    pruned = tmp_path / "pruned.json"
    pruned.write_text(json.dumps({"trial": {}, "status": "pruned", "evaluation": None}))
    for bad, match in (
        (pruned, "without an evaluation (status 'pruned')"),
        (out / "grid.png", "is not JSON"),
        (out / "nothing.json", "does not exist"),
    ):
        assert main(["report", str(bad)]) == 2
        assert match in capsys.readouterr().err


def test_suite_from_a_yaml_file(tmp_path: Path, models: list[str], capsys) -> None:
    spec = tmp_path / "mine.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "mine",
                "nominal_id": "robust_rl/CartPole-v1",
                "test": {"nominal": {}, "long pole": {"length": 1.0}},
                "uncertainty": {"length": [0.25, 1.0]},
            }
        )
    )
    assert get_suite(str(spec)).name == "mine"
    assert main(["evaluate", models[0], "--suite", str(spec), "--episodes", "1"]) == 0
    assert "| long pole |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--suite", "nope"], "unknown suite 'nope'"),
        (["--attack", "critic"], "attack 'critic' does not apply to PPO"),
        (["--grid", "--points", "1"], "points must be an integer in 2..25"),
    ],
)
def test_user_errors_exit_2(models: list[str], capsys, extra: list[str], match: str) -> None:
    assert main(["evaluate", models[0], "--episodes", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robust-rl evaluate: error: ") and match in err


def test_wrong_or_unknown_file_exits_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "model.zip"
    bad.write_text("hello")
    assert main(["evaluate", str(bad)]) == 2
    assert "is not a readable Stable-Baselines3 model" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.zip")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_attack_radii_relative_to_random_actions(tmp_path: Path, models: list[str]) -> None:
    from robust_rl.evaluation import random_observation_scale

    out = tmp_path / "random_scale"
    args = ["evaluate", *models, "--suite", "cartpole", "--episodes", "1"]
    args += ["--attack", "random", "--epsilon", "0.5", "--epsilon-scale", "random"]
    assert main([*args, "--attack-episodes", "1", "--out", str(out)]) == 0
    rows = EvaluationResults.from_json((out / "attack.json").read_text()).rows
    expected = tuple(random_observation_scale("cartpole", seed=0))  # --seed 0
    assert [r.epsilon_scale for r in rows] == [expected, expected]


def test_progress_bars_on_stderr_unless_quiet(models: list[str], capsys) -> None:
    args = ["evaluate", models[0], "--episodes", "1", "--grid", "--points", "2"]
    args += ["--grid-episodes", "1", "--attack", "random", "--epsilon", "0", "0.1"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "suite: 100%" in captured.err and "4/4" in captured.err
    assert "grid: 100%" in captured.err and "8/8" in captured.err
    assert "attack random: 100%" in captured.err and "2/2" in captured.err
    assert "## " in captured.out or "|" in captured.out  # the tables still print
    assert main([*args, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_the_suite_is_read_from_the_models_spaces(models: list[str], capsys) -> None:
    from types import SimpleNamespace

    import gymnasium as gym
    from gymnasium import spaces

    from robust_rl.errors import InvalidArgumentError
    from robust_rl.evaluation.models import infer_suite

    assert main(["evaluate", models[0], "--episodes", "1", "--quiet"]) == 0
    assert "heavy pole" in capsys.readouterr().out  # the cartpole suite's test MDPs
    odd = SimpleNamespace(
        observation_space=spaces.Box(-1, 1, (7,)), action_space=spaces.Discrete(5)
    )
    with pytest.raises(InvalidArgumentError, match="fit no registered suite; give --suite"):
        infer_suite({"odd": odd})
    import importlib.util

    if importlib.util.find_spec("mujoco") is not None:  # the MuJoCo ids register without it
        env = gym.make("robust_rl/Walker2d-v5")
        twin = SimpleNamespace(
            observation_space=env.observation_space, action_space=env.action_space
        )
        env.close()
        with pytest.raises(InvalidArgumentError, match="fit several suites"):
            infer_suite({"twin": twin})


def test_the_suite_is_read_without_mujoco_installed(models: list[str]) -> None:
    """The MuJoCo tasks are registered without mujoco; reading the suite skips them."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['mujoco'] = None\n"
        "from robust_rl.cli import main\n"
        f"sys.exit(main(['evaluate', {str(models[0])!r}, '--episodes', '1', '--quiet']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "heavy pole" in out.stdout
