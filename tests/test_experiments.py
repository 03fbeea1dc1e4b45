"""The experiment scripts run end to end (tiny budgets; the real runs are in experiments/)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if not (ROOT / "experiments").is_dir():  # a source distribution ships the library, not these
    pytest.skip("the experiments/ folder is not here", allow_module_level=True)

#: subprocess smoke runs: their own CI step (python -m pytest -q -m experiments)
pytestmark = pytest.mark.experiments


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "experiments" / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
        | {k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
    )


def test_reproduce_cartpole_tiny(tmp_path):
    out = tmp_path / "repro"
    args = (
        "--seeds",
        "1",
        "--timesteps",
        "300",
        "--episodes",
        "1",
        "--grid-episodes",
        "1",
        "--max-parallel",
        "1",
        "--configs",
        "shipped",
        "--previous",
        str(ROOT / "experiments" / "results" / "cartpole"),
        "--out",
        str(out),
    )
    proc = run("reproduce_cartpole.py", *args)
    assert proc.returncode == 0, proc.stderr
    for name in (
        "dqn_seed0.zip",
        "robust-dqn_seed0.zip",
        "robust-dqn-eta-inf_seed0.zip",
        "dqn-dr_seed0.zip",
        "robust-dqn-dynamics_seed0.zip",
        "robust-dqn-dynamics-eta-inf_seed0.zip",
        "results.md",
        "results.csv",
        "per_seed.csv",
        "evaluation_over_seeds.png",
    ):
        assert (out / name).is_file(), name
    table = (out / "results.md").read_text()
    assert "| heavy pole |" in table and "## How to replicate" in table
    # the earlier table beside the new one, and the comparisons over seeds (1 seed: n/a)
    assert "| before: DQN | before: RobustDQN | before: DQN + domain rand. |" in table
    assert "| heavy pole | " in table and "| 454.3 ± 91.9 |" in table
    assert "| RobustDQN − RobustDQN η=∞ | grid worst case | n/a |" in table
    assert "| RobustDQN dynamics set − DQN | grid worst case | n/a |" in table
    assert "### Only the seeds that learned the nominal task" in table
    # resume: a second invocation reuses the finished trials
    again = run("reproduce_cartpole.py", *args)
    assert again.returncode == 0 and again.stdout.count("[skipped]") == 6


def test_reproduce_cartpole_select_best_tiny(tmp_path):
    out = tmp_path / "repro"
    args = ["--seeds", "1", "--timesteps", "300", "--episodes", "1", "--grid-points", "0"]
    args += ["--max-parallel", "1", "--configs", "shipped", "--variants", "dqn", "dqn-dr"]
    args += ["--select", "best", "--checkpoints", "3", "--checkpoint-episodes", "1"]
    proc = run("reproduce_cartpole.py", *args, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = (out / "results.md").read_text()
    assert "at the best of 3 validation checkpoints" in table
    # only the variants trained in this folder have columns and comparisons
    assert "| MDP | DQN | DQN + domain rand. | paper: regular Q |" in table
    assert "RobustDQN" not in table
    record = json.loads((out / "runs" / "dqn__seed0" / "result.json").read_text())
    assert record["trial"]["select"] == "best" and record["selected"]["timesteps"] in (
        100,
        200,
        300,
    )


def test_reproduce_continuous_tiny(tmp_path):
    out = tmp_path / "cont"
    args = ["--task", "pendulum", "--configs", "shipped", "--seeds", "1", "--timesteps", "300"]
    args += ["--episodes", "1", "--grid-points", "2", "--attack-episodes", "1"]
    args += ["--variants", "sac", "robust-sac", "robust-sac-dynamics"]
    args += ["--max-parallel", "1", "--out", str(out)]
    proc = run("reproduce_continuous.py", *args)
    assert proc.returncode == 0, proc.stderr
    task = out / "pendulum"
    for name in ("sac_seed0.zip", "robust-sac_seed0.zip", "results.md", "per_seed.csv"):
        assert (task / name).is_file(), name
    table = (task / "results.md").read_text()
    assert "| g high | " in table and "| critic attack, ε = 0.1 | " in table
    # variants not trained yet are reported as such, and the goals say what is missing
    assert "| grid worst case (per seed) | " in table and "| n/a | n/a |" in table
    assert "- RobustTD3 vs TD3: not all trials have finished." in table
    assert "- RobustSAC grid worst case" in table and "## How to replicate" in table
    assert re.search(
        r"Trial time .*: sac \d+\.\d min \(1 trial, \d+ min in all\); robust-sac ", table
    )
    seeds = {row.split(",")[0] for row in (task / "per_seed.csv").read_text().splitlines()[1:]}
    assert seeds == {"sac", "robust-sac", "robust-sac-dynamics"}
    assert "- RobustSAC dynamics set grid worst case" in table
    assert (
        "RobustSAC dynamics set: `experiments/configs/robust_sac_dynamics_pendulum.yaml`"
        not in (table)
    )  # shipped configs are named as such, not as tuned points


def test_bench_dynamics_and_target_variance_tiny(tmp_path):
    proc = run(
        "bench_dynamics.py",
        *("--timesteps", "1300", "--repeats", "1", "--rounds", "1", "--calls", "2"),
        *("--levels", "2", "--saa-levels", "1", "--out", str(tmp_path / "bench")),
    )
    assert proc.returncode == 0, proc.stderr
    table = (tmp_path / "bench" / "dynamics.md").read_text()
    row = re.search(
        r"\| RobustDQN dynamics, RT-MLMC L=2 \| [\d,]+ \| \d\.\d\d \| \d+ \| ([\d.]+) \|", table
    )
    assert row and float(row.group(1)) < 5.0  # RT-MLMC's expected rows, not SAA's 2^L + 1
    assert re.search(r"\| RobustDQN dynamics, SAA L=1, one call \| [\d,]+ \| \d\.\d\d \|", table)
    from stable_baselines3 import DQN

    import robust_rl  # noqa: F401  (registers the envs)

    model = tmp_path / "dqn.zip"
    DQN("MlpPolicy", "robust_rl/CartPole-v1", learning_starts=50, seed=0).learn(200).save(model)
    proc = run(
        "dynamics_target_variance.py",
        *("--model", str(model), "--transitions", "16", "--repeats", "3", "--etas", "1", "inf"),
        *("--out", str(tmp_path / "var")),
    )
    assert proc.returncode == 0, proc.stderr
    table = (tmp_path / "var" / "variance.md").read_text()
    assert re.search(r"\| saa \| inf \| [\d.]+ \| [\d.]+ \| 0\.0% \|", table)
    assert "| rt-mlmc | 1 |" in table


@pytest.mark.parametrize("attack", [False, True], ids=["grid", "attack"])
def test_bench_evaluation_tiny(tmp_path, attack):
    from stable_baselines3 import DQN, SAC

    import robust_rl  # noqa: F401  (registers the ids)

    DQN("MlpPolicy", "robust_rl/CartPole-v1", seed=0).save(tmp_path / "dqn.zip")
    models = ["--model", f"cartpole={tmp_path / 'dqn.zip'}"]
    if attack:
        workload = ["--attack", "pgd", "--epsilons", "0.05", "0.1", "--episodes", "3"]
    else:
        SAC("MlpPolicy", "robust_rl/Pendulum-v1", seed=0).save(tmp_path / "sac.zip")
        models += ["--model", f"pendulum={tmp_path / 'sac.zip'}"]
        workload = ["--points", "2", "--episodes", "2"]
    out = tmp_path / "out"
    proc = run("bench_evaluation.py", *models, *workload, "--rounds", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = (out / "evaluation_speed.md").read_text()
    if attack:
        assert "| cartpole | pgd: 2 radii x 3 | 1 |" in table and "| True |" in table
        assert "per-radius steps/s" in table
    else:
        assert "| cartpole | 2x2x2 | 1 |" in table and "| True |" in table.split("| pendulum")[0]
        assert "| pendulum | 2x2x2 | 1 | 1,600 |" in table


def test_bench_throughput_tiny(tmp_path):
    proc = run(
        "bench_throughput.py",
        "--timesteps",
        "1200",
        "--repeats",
        "1",
        "--levels",
        "2",
        "--saa-levels",
        "--profile-rounds",
        "1",
        "--profile-calls",
        "5",
        "--no-compile",
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "throughput.md").read_text()
    assert "| DQN (SB3) |" in text and "RobustDQN RT-MLMC L=2" in text
    assert "| RobustDQN RT-MLMC L=2 | " in text.split("## Profile")[1]


def test_bench_throughput_continuous_tiny(tmp_path):
    args = ["--env", "Pendulum-v1", "--task", "pendulum", "--levels", "2", "--steps", "3"]
    args += ["--rounds", "1", "--learning-starts", "64", "--out", str(tmp_path)]
    args += ["--without-control-variate"]
    proc = run("bench_throughput_continuous.py", *args)
    assert proc.returncode == 0, proc.stderr
    table = (tmp_path / "throughput.md").read_text()
    assert "| RobustSAC RT-MLMC L=2 | " in table and "| RobustTD3 RT-MLMC L=2 | " in table
    assert "| RobustTD3 RT-MLMC L=2, no control variate | " in table
    assert "--without-control-variate --out" in table
    assert (
        "wall time" in table
        and "Command: `python experiments/bench_throughput_continuous.py" in table
    )
    again = run("bench_throughput_continuous.py", *args)  # never overwritten silently
    assert again.returncode != 0 and "pass --force" in again.stderr


def test_bench_step_breakdown_tiny(tmp_path):
    proc = run("bench_step_breakdown.py", "--rounds", "1", "--steps", "2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    table = (tmp_path / "step_breakdown.md").read_text()
    assert (
        "| DQN (SB3) | " in table and "| RobustDQN | " in table and "| RobustDQN − DQN | " in table
    )
    assert "discarded target rows − DQN | " in table
    again = run("bench_step_breakdown.py", "--rounds", "1", "--steps", "2", "--out", str(tmp_path))
    assert again.returncode != 0 and "--force" in again.stderr


def test_bench_estimators_tiny(tmp_path):
    proc = run(
        "bench_estimators.py",
        "--max-level",
        "1",
        "--replicates",
        "200",
        "--timing-reps",
        "1",
        "--convex-seeds",
        "1",
        "--max-evals",
        "2000",
        "--saa-levels",
        "1",
        "--rt-levels",
        "1",
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "estimators.md").read_text()
    assert "## 1. Closed form" in text and (tmp_path / "estimators.png").is_file()


def test_compare_reruns_by_hand(tmp_path):
    """Shared seeds 0-1 (new 10, 20 vs old 30, 40) and all seeds (old also has seed 2 = 50);
    with 2 vs 2 values every relabelling is enumerated: the p-value is exact."""
    new, old = tmp_path / "new.csv", tmp_path / "old.csv"
    header = "variant,seed,metric,value\n"
    new.write_text(header + "a,0,m,10\na,1,m,20\nb,0,m,99\n")
    old.write_text(header + "a,0,m,30\na,1,m,40\na,2,m,50\n")
    out = tmp_path / "cmp.md"
    args = ("--variant", "a", "--new", str(new), "--old", str(old), "--metrics", "m")
    proc = run("compare_reruns.py", *args, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in out.read_text().splitlines() if line.startswith("| m |")]
    # shared: 15 vs 35, difference -20; of the 6 relabellings of {10, 20, 30, 40}, 2 are as extreme
    assert rows[0].startswith("| m | shared seeds (2) | 15.0 | 35.0 | -20.0 |")
    assert rows[0].endswith("| 0.333 |")
    assert rows[1].startswith("| m | all seeds (2 vs 3) | 15.0 | 40.0 | -25.0 |")
    # nothing is overwritten without --force, and a variant absent from a file is refused
    again = run("compare_reruns.py", *args, "--out", str(out))
    assert again.returncode != 0 and "exists" in again.stderr
    missing = run("compare_reruns.py", "--variant", "zz", "--new", str(new), "--old", str(old))
    assert missing.returncode != 0 and "has no rows of variant 'zz'" in missing.stderr


def test_continuous_goals_state_the_evidence(monkeypatch):
    """The goal lines give the worst-case difference and its p-value, so that a goal met by
    a difference the seeds cannot tell from zero reads as such."""
    from types import SimpleNamespace

    monkeypatch.syspath_prepend(str(ROOT / "experiments"))
    import reproduce_continuous as rc

    def trial(variant: str, seed: int, nominal: float, worst: float) -> SimpleNamespace:
        summary = SimpleNamespace(nominal=nominal, grid_worst=worst)
        return SimpleNamespace(
            trial=SimpleNamespace(variant=variant, seed=seed), summary=lambda: summary
        )

    done = [trial("sac", s, 100.0, w) for s, w in enumerate([1.0, 2.0, 3.0])]
    done += [trial("robust-sac", s, 99.0, w) for s, w in enumerate([2.0, 3.0, 4.0])]
    done += [trial("sac-dr", s, 90.0, w) for s, w in enumerate([10.0, 11.0, 12.0])]
    lines = rc.goals(done, ["sac", "robust-sac", "sac-dr"], 3)
    # 3.0 >= 2.0 + 0.6: met, but 3 vs 3 seeds one apart cannot be told apart: exactly 10 of the 20
    # relabellings give a subset sum >= 9 or <= 6, |difference| >= 1, so p = 0.5
    assert lines[0].startswith("- RobustSAC grid worst case 3.0 vs SAC 2.0: goal (at least 2.6")
    assert (
        " met (difference +1.0, permutation p = 0.500); nominal 99.0 vs 100.0: within 5% yes."
        in lines[0]
    )
    # only the two extreme relabellings reach |difference| >= 8: p = 2/20
    assert "not above (difference -8.0, permutation p = 0.100)" in lines[1]


def test_continuous_tuned_from(tmp_path, monkeypatch):
    """--tuned-from: a later sweep's best point wins for the variants it tuned; the others keep
    the task's first sweep; a folder without best/ is refused, naming the option."""
    monkeypatch.syspath_prepend(str(ROOT / "experiments"))
    import reproduce_continuous as rc

    from robust_rl.errors import InvalidArgumentError, MissingFileError

    task = rc.TASKS["hopper"]
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, variant in ((a, "robust-sac"), (b, "robust-td3")):
        (folder / "best").mkdir(parents=True)
        (folder / "best" / f"{variant}.yaml").write_text("radius: 0.02\n")
    assert rc.tuned_file(task, "robust-sac", [a]) == a / "best" / "robust-sac.yaml"
    assert rc.tuned_file(task, "robust-sac", [b, a]) == a / "best" / "robust-sac.yaml"
    assert rc.tuned_file(task, "robust-td3", [b, a]) == b / "best" / "robust-td3.yaml"
    first = rc.RESULTS / "sweep_hopper_robust" / "best" / "robust-sac-eta-inf.yaml"
    assert rc.tuned_file(task, "robust-sac-eta-inf", [a, b]) == first
    assert rc.tuned_file(task, "robust-sac-eta-inf", None) == first
    entries = rc.variant_configs(task, "tuned", [], [a])
    assert entries["robust-sac"]["config"] == str(a / "best" / "robust-sac.yaml")
    assert entries["robust-sac-eta-inf"]["config"] == str(first)
    with pytest.raises(MissingFileError, match="--tuned-from"):
        rc.tuned_file(task, "robust-sac", [a, tmp_path / "nothing"])
    (b / "best" / "robust-sac.yaml").write_text("radius: 0.05\n")
    with pytest.raises(InvalidArgumentError, match="--tuned-from: robust-sac is tuned in more"):
        rc.tuned_file(task, "robust-sac", [a, b])


def test_attack_saved_models_tiny(tmp_path):
    from stable_baselines3 import DQN, PPO

    from robust_rl.evaluation import random_observation_scale

    for cls, name in ((PPO, "ppo"), (DQN, "dqn")):
        for seed in (0, 1):
            model = cls("MlpPolicy", "robust_rl/CartPole-v1", seed=seed, device="cpu")
            model.save(tmp_path / f"{name}_seed{seed}.zip")
    args = ["--models", str(tmp_path), "--suite", "cartpole", "--attack", "random"]
    args += ["--epsilons", "0", "0.5", "--episodes", "2", "--seed", "7", "--pairs", "ppo:dqn"]
    proc = run("attack_saved_models.py", *args)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "attacks_random.md").read_text()
    assert "| ε | dqn | ppo |" in text and "| ppo − dqn | 0.5 | " in text
    assert "| comparison | ε | difference of means |" in text and "| 2 vs 2 |" in text
    scale = random_observation_scale("cartpole", seed=7)
    assert f"[{', '.join(f'{s:.4g}' for s in scale)}]" in text
    rows = (tmp_path / "attacks_random_per_seed.csv").read_text().splitlines()
    assert rows[0] == "variant,seed,epsilon,mean_return" and len(rows) == 1 + 4 * 2
    assert (tmp_path / "attacks_random_over_seeds.json").is_file()
    # nothing is overwritten without --force
    again = run("attack_saved_models.py", *args)
    assert again.returncode != 0 and "already exists; pass --force" in again.stderr
    # --resume attacks only a model added since, and reuses the others' episodes
    PPO("MlpPolicy", "robust_rl/CartPole-v1", seed=2, device="cpu").save(tmp_path / "ppo_seed2.zip")
    resumed = run("attack_saved_models.py", *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "models attacked now: 1; reused from attacks_random_episodes.json: 4" in resumed.stdout
    rows = (tmp_path / "attacks_random_per_seed.csv").read_text().splitlines()
    assert (
        len(rows) == 1 + 5 * 2 and "ppo [0, 1, 2]" in (tmp_path / "attacks_random.md").read_text()
    )
    # other settings: every model is attacked again
    other = run(
        "attack_saved_models.py", *args[:-4], "--episodes", "1", "--pairs", "ppo:dqn", "--resume"
    )
    assert other.returncode == 0 and "models attacked now: 5; reused" in other.stdout


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_target_noise_bias_tiny(tmp_path, algo):
    """Shared action noise gives exactly the value at the next state at radius 0; noise drawn
    per draw gives a soft-min below it (a minimum over noise), more so at a small η."""
    from stable_baselines3 import SAC, TD3

    cls = {"sac": SAC, "td3": TD3}[algo]
    model = cls("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [16]}, seed=0)
    model.save(tmp_path / "m.zip")
    args = ["--model", str(tmp_path / "m.zip"), "--algo", algo, "--env", "Pendulum-v1"]
    args += ["--etas", "0.001", "inf", "--states", "64", "--repeats", "3", "--out", str(tmp_path)]
    proc = run("target_noise_bias.py", *args)
    assert proc.returncode == 0, proc.stderr
    rows = [r.split("|") for r in (tmp_path / "m_radius0.md").read_text().splitlines()]
    cells = {r[1].strip(): r for r in rows if len(r) > 4 and r[1].strip() in ("0.001", "inf")}
    for eta in ("0.001", "inf"):  # 0 up to rounding: "+0.0000 ± 0.0000" or "-0.0000 ± ..."
        assert cells[eta][2].strip().lstrip("+-") == "0.0000 ± 0.0000"
    sharp = float(cells["0.001"][3].split("±")[0])
    assert sharp < 0 and sharp < float(cells["inf"][3].split("±")[0])
    again = run("target_noise_bias.py", *args)
    assert again.returncode != 0 and "already exists; pass --force" in again.stderr


def test_robust_gap_scan_tiny(tmp_path):
    """The soft-min sits below the value at the next state, further at a small η and a large
    radius; averaging (η = inf) stays closer; an existing table is not overwritten."""
    from stable_baselines3 import SAC

    SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [16]}, seed=0).save(
        tmp_path / "m.zip"
    )
    args = ["--model", str(tmp_path / "m.zip"), "--env", "Pendulum-v1", "--radii", "0.05", "0.5"]
    args += ["--etas", "0.001", "inf", "--states", "64", "--scale-steps", "200"]
    args += ["--repeats", "3", "--out", str(tmp_path)]
    proc = run("robust_gap_scan.py", *args)
    assert proc.returncode == 0, proc.stderr
    rows = [r.split("|") for r in (tmp_path / "m.md").read_text().splitlines()]
    cells = {r[1].strip(): r for r in rows if len(r) > 3 and r[1].strip() in ("0.05", "0.5")}
    gap = {  # (radius, column) -> mean gap; column 2 is η = 0.001, column 3 is η = inf
        (radius, col): float(cells[radius][col].split("±")[0])
        for radius in ("0.05", "0.5")
        for col in (2, 3)
    }
    assert gap["0.5", 2] < gap["0.05", 2] < 0
    assert gap["0.5", 2] < gap["0.5", 3]
    again = run("robust_gap_scan.py", *args)
    assert again.returncode != 0 and "already exists; pass --force" in again.stderr


def test_compact_records_migrates_old_results(tmp_path):
    import json

    from robust_rl.evaluation import EvaluationResults, EvaluationRow, save_results

    def results(model: str, shift: float = 0.0) -> EvaluationResults:
        rows = [
            EvaluationRow(model, "original", "robust_rl/CartPole-v1", (1 / 3 + shift, 500.0)),
            EvaluationRow(model, "masspole=0.05", "robust_rl/CartPole-v1", (7.0, 9.0),
                          kind="grid", params={"masspole": 0.05}),
        ]  # fmt: skip
        return EvaluationResults(
            tuple(rows), name="evaluation", suite="cartpole", axes=("masspole",)
        )

    root = tmp_path / "results"
    for name, shift in (("a__seed0", 0.0), ("b__seed0", 1.0)):
        trial = root / "runs" / name
        (trial / "eval").mkdir(parents=True)
        record = {"trial": {"name": name}, "status": "done", "intermediate": {},
                  "evaluation": results(name).to_dict(), "wall_time_s": 1.0}  # fmt: skip
        (trial / "result.json").write_text(json.dumps(record, indent=1))
        save_results(results(name, shift), trial / "eval")  # b's differs from its record
    old = root / "runs" / "c__seed0" / "eval"  # the oldest format: CSVs, no JSON
    old.mkdir(parents=True)
    for f in ("suite.csv", "suite.md", "grid.png"):
        (old / f).write_text("x")
    (root / "runs" / "c__seed0" / "result.json").write_text(json.dumps({"trial": {}, "grid": {}}))
    save_results(results("a").merge(name="evaluation_over_seeds"), root)
    proc = run("compact_records.py", str(root))
    assert proc.returncode == 0, proc.stderr
    assert "records rewritten 2, eval/ folders removed 2" in proc.stdout
    assert "b__seed0/eval: eval/evaluation.json differs from result.json (kept)" in proc.stdout
    assert not (root / "runs" / "a__seed0" / "eval").exists()
    assert (root / "runs" / "b__seed0" / "eval" / "evaluation.csv").is_file()
    assert sorted(p.name for p in old.iterdir()) == ["suite.csv"]
    for name in ("a__seed0", "b__seed0"):
        record = json.loads((root / "runs" / name / "result.json").read_text())
        assert "columns" in record["evaluation"]
        expected = EvaluationResults.from_dict(results(name).to_dict(compact=True))
        assert EvaluationResults.from_dict(record["evaluation"]) == expected
    over = json.loads((root / "evaluation_over_seeds.json").read_text())
    assert "columns" in over and not (root / "evaluation_over_seeds.csv").exists()
    assert (root / "evaluation_over_seeds.png").read_bytes()[:4] == b"\x89PNG"
    again = run("compact_records.py", str(root))  # nothing left to change
    assert "records rewritten 0, eval/ folders removed 0" in again.stdout
    assert run("compact_records.py", str(tmp_path / "nothing")).returncode == 2


def test_committed_results_stay_compact():
    """experiments/results holds compact records: under 12 MB (about 30 KB per trial of a
    reproduction, the rest tables, studies and one figure per table), no per-trial figures or
    tables."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "experiments/results"], cwd=ROOT, capture_output=True, text=True
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    files = [ROOT / f for f in listed.stdout.split("\0") if f and (ROOT / f).is_file()]
    assert files
    assert sum(f.stat().st_size for f in files) < 12_000_000
    per_trial = [
        f for f in files if f.parent.name == "eval" and f.suffix in (".png", ".md", ".json")
    ]
    assert not per_trial, per_trial[:3]


def test_reevaluate_trial_finds_a_changed_row(tmp_path):
    import json

    from robust_rl.sweep import expand_sweep, parse_sweep, run_trial

    spec = {
        "name": "tiny",
        "env": "robust_rl/Pendulum-v1",
        "seeds": [0],
        "evaluation": {"suite": "pendulum", "tune_episodes": 1, "episodes": 2},
        "variants": {"a2c": {"algo": "a2c", "params": {"n_timesteps": 16, "n_steps": 8}}},
    }
    trial = expand_sweep(parse_sweep(spec))[0]
    assert run_trial(trial, tmp_path / "runs").status == "done"
    folder = tmp_path / "runs" / trial.name
    proc = run("reevaluate_trial.py", str(folder), "--out", str(tmp_path / "same.md"))
    assert proc.returncode == 0, proc.stderr
    rows = len(json.loads((folder / "result.json").read_text())["evaluation"]["rows"])
    assert f"{rows} rows, 0 differ" in (tmp_path / "same.md").read_text()
    # the stored record altered: one episode of the first row
    record = json.loads((folder / "result.json").read_text())
    record["evaluation"]["rows"][0][1][0] += 1.0
    (folder / "result.json").write_text(json.dumps(record))
    proc = run("reevaluate_trial.py", str(folder), "--out", str(tmp_path / "changed.md"))
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "changed.md").read_text()
    assert f"{rows} rows, 1 differ" in text and re.search(r"\| 1 of [12] \|", text)
    again = run("reevaluate_trial.py", str(folder), "--out", str(tmp_path / "changed.md"))
    assert again.returncode == 2 and "exists" in again.stderr


def test_training_curves_reads_a_tensorboard_log(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    run_dir = tmp_path / "runs" / "dqn__seed0"
    writer = SummaryWriter(str(run_dir / "tb" / "DQN_1"))
    for step, value in [(500, 10.0), (1500, 80.0), (2500, 300.0), (3500, 120.0)]:
        writer.add_scalar("rollout/ep_rew_mean", value, step)
    writer.close()
    out = tmp_path / "curves.md"
    proc = run("training_curves.py", str(run_dir), "--every", "1000", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "| dqn__seed0 | 10 | 80 | 300 | 120 | 300 | 120 |" in out.read_text()
    proc = run("training_curves.py", str(tmp_path), "--tag", "x/y", "--out", str(tmp_path / "b.md"))
    assert proc.returncode == 2 and "no scalar 'x/y'" in proc.stderr.strip().splitlines()[-1]
