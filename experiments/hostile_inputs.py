"""Hostile inputs and faults against the command line: every case a user mistake, a crafted file
or a broken environment, each run as a real ``robust-rl`` process.

For each case the table records the exit code, whether stderr holds a Python traceback, the
number of stderr lines after the progress bars, the wall time, whether a payload planted in a
crafted file ran, and whether the outcome is the expected one (a one-line refusal, exit 2, or a
normal run where the input is legitimate). Writes ``OUT/hostile_inputs.md`` and ``.csv``.

    python experiments/hostile_inputs.py --out experiments/results/hostile_inputs
"""

from __future__ import annotations

import argparse
import base64
import json
import pickle
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cloudpickle
import yaml

from robust_rl.io import atomic_write_text, csv_text

ROOT = Path(__file__).resolve().parent.parent
TINY = {"n_timesteps": 64, "learning_starts": 32, "buffer_size": 200, "batch_size": 16}


class Payload:
    """Unpickling this creates the marker file (what a crafted file would run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


@dataclass
class Case:
    name: str
    argv: Callable[[Path], list[str]]
    expect: str = "refused"  # "refused" (exit 2, one line), "ok" (exit 0), "failed" (exit 1)
    setup: Callable[[Path], None] | None = None
    stdin_hold: Callable[[Path], object] | None = None


def _cfg(tmp: Path, **over: object) -> Path:
    base = yaml.safe_load((ROOT / "robust_rl" / "configs" / "dqn_cartpole.yaml").read_text())
    path = tmp / f"cfg_{abs(hash(tuple(sorted(map(str, over.items())))))}.yaml"
    path.write_text(yaml.safe_dump({**base, **TINY, **over}))
    return path


def _train_args(
    tmp: Path,
    config: Path | None,
    *,
    algo: str = "dqn",
    env: str = "robust_rl/CartPole-v1",
    out: str = "r",
) -> list[str]:
    """``robust-rl train`` of ``algo`` on ``env`` into ``tmp/out`` (``--config`` if given)."""
    cmd = ["train", "--algo", algo, "--env", env, "--out", str(tmp / out)]
    return cmd if config is None else [*cmd, "--config", str(config)]


def _train(tmp: Path, *extra: str, out: str = "run", **over: object) -> list[str]:
    return [
        *_train_args(tmp, _cfg(tmp, **over), out=out),
        *("--no-progress-bar", *extra),
    ]


def _evaluate(tmp: Path, *extra: str) -> list[str]:
    """``robust-rl evaluate`` of a saved DQN (:func:`_model`), one episode per MDP."""
    return ["evaluate", str(_model(tmp)), "--episodes", "1", *extra]


def _model(tmp: Path) -> Path:
    path = tmp / "dqn.zip"
    if not path.exists():
        from stable_baselines3 import DQN

        import robust_rl  # noqa: F401  (registers the ids)

        DQN("MlpPolicy", "robust_rl/CartPole-v1", seed=0).save(path)
    return path


def _crafted_model(tmp: Path) -> None:
    src = _model(tmp)
    data = json.loads(zipfile.ZipFile(src).read("data"))
    data["_last_obs"] = {
        ":type:": "x",
        ":serialized:": base64.b64encode(cloudpickle.dumps(Payload(tmp / "PAYLOAD"))).decode(),
    }
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp / "crafted.zip", "w") as zout:
        for n in zin.namelist():
            zout.writestr(n, json.dumps(data) if n == "data" else zin.read(n))


def _crafted_checkpoint(tmp: Path) -> None:
    (tmp / "ck").mkdir(exist_ok=True)
    (tmp / "ck" / "checkpoint.pkl").write_bytes(pickle.dumps(Payload(tmp / "PAYLOAD")))


def _unfinished(tmp: Path) -> None:
    subprocess.run(
        # rollouts of 4 steps: checkpoints at step 16, 32, 48; model.zip removed after, as a
        # run killed before its final save leaves it
        [
            sys.executable,
            "-m",
            "robust_rl.cli",
            *_train(tmp, "--checkpoint-freq", "16", train_freq=4),
        ],
        capture_output=True,
        check=True,
    )
    (tmp / "run" / "model.zip").unlink()


def _sweep_file(tmp: Path, text: str) -> Path:
    path = tmp / "sweep.yaml"
    path.write_text(text)
    return path


_SWEEP = """name: s
env: robust_rl/CartPole-v1
seeds: [{seed}]
evaluation: {{suite: cartpole, tune_episodes: 1, episodes: 1, grid_points: 0}}
variants:
  dqn:
    algo: dqn
    params: {{n_timesteps: 64, learning_starts: 32, learning_rate: {lr}}}
{extra}"""


def _listener(tmp: Path) -> object:
    """A TCP listener that is not Ray (accepts and says nothing)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    (tmp / "port").write_text(str(srv.getsockname()[1]))

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Timer(30, conn.close).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv


def cases() -> list[Case]:
    return [
        Case(
            "train: rerun over an unfinished run",
            lambda t: _train(t, train_freq=4),
            setup=_unfinished,
        ),
        Case(
            "train: crafted checkpoint.pkl with --resume",
            lambda t: _train(t, "--resume", out="ck"),
            setup=_crafted_checkpoint,
        ),
        Case("train: learning_rate .inf", lambda t: _train(t, learning_rate=float("inf"))),
        Case("train: learning_rate NaN", lambda t: _train(t, learning_rate=float("nan"))),
        Case("train: learning_rate a string", lambda t: _train(t, learning_rate="fast")),
        Case("train: gamma -1", lambda t: _train(t, gamma=-1)),
        Case("train: batch_size 0", lambda t: _train(t, batch_size=0)),
        Case("train: unknown policy", lambda t: _train(t, policy="NopePolicy")),
        Case(
            "train: max_level 26",
            lambda t: _train_args(t, _cfg(t, max_level=26, estimator="saa"), algo="robust-dqn"),
        ),
        Case(
            "train: duplicate key in the config",
            lambda t: _train_args(t, t / "dup.yaml"),
            setup=lambda t: (t / "dup.yaml").write_text("learning_rate: 0.1\nlearning_rate: 0.2\n"),
        ),
        Case(
            "train: binary config file",
            lambda t: _train_args(t, t / "bin.yaml"),
            setup=lambda t: (t / "bin.yaml").write_bytes(bytes(range(256))),
        ),
        Case(
            "train: --out is a file",
            lambda t: _train(t, out="afile"),
            setup=lambda t: (t / "afile").write_text("x"),
        ),
        Case(
            "train: --out inside a file",
            lambda t: _train(t, out="afile/run"),
            setup=lambda t: (t / "afile").write_text("x"),
        ),
        Case(
            "train: --tensorboard-log is a file",
            lambda t: _train(t, "--tensorboard-log", str(t / "afile")),
            setup=lambda t: (t / "afile").write_text("x"),
        ),
        Case("train: --seed 4294967296", lambda t: _train(t, "--seed", "4294967296")),
        Case("train: --device gpu0", lambda t: _train(t, "--device", "gpu0")),
        Case(
            "train: unknown env id",
            lambda t: _train_args(t, _cfg(t), env="Nope-v0"),
        ),
        Case(
            "train: no shipped config for the pair",
            lambda t: _train_args(t, None, algo="robust-sac"),
        ),
        Case(
            "train: gymnasium module:Env id (legitimate)",
            lambda t: _train_args(t, _cfg(t), env="gymnasium.envs.classic_control:CartPole-v1"),
            expect="ok",
        ),
        Case(
            "evaluate: crafted model zip",
            lambda t: ["evaluate", str(t / "crafted.zip"), "--episodes", "1"],
            setup=_crafted_model,
        ),
        Case(
            "evaluate: model of another task",
            lambda t: _evaluate(t, "--suite", "pendulum"),
        ),
        Case("evaluate: model path is a folder", lambda t: ["evaluate", str(t), "--episodes", "1"]),
        Case(
            "evaluate: not a model file",
            lambda t: ["evaluate", str(t / "x.zip")],
            setup=lambda t: (t / "x.zip").write_text("hello"),
        ),
        Case(
            "evaluate: --out is a file",
            lambda t: _evaluate(t, "--out", str(t / "afile")),
            setup=lambda t: (t / "afile").write_text("x"),
        ),
        Case(
            "evaluate: --epsilon -1",
            lambda t: _evaluate(t, "--attack", "random", "--epsilon", "-1"),
        ),
        Case(
            "evaluate: --points 1",
            lambda t: _evaluate(t, "--grid", "--points", "1"),
        ),
        Case(
            "evaluate: attack the model cannot take",
            lambda t: _evaluate(t, "--attack", "critic", "--epsilon", "0.1"),
        ),
        Case("evaluate: unknown suite", lambda t: _evaluate(t, "--suite", "nope")),
        Case(
            "evaluate: Ray address unreachable",
            lambda t: _evaluate(t, "--grid", "--backend", "ray", "--address", "127.0.0.1:1"),
        ),
        Case(
            "evaluate: suite read from the model (legitimate)",
            lambda t: _evaluate(t, "--quiet"),
            expect="ok",
        ),
        Case(
            "sweep: two variants with the same name",
            lambda t: [
                "sweep",
                str(
                    _sweep_file(t, _SWEEP.format(seed=1, lr=0.001, extra="  dqn:\n    algo: dqn\n"))
                ),
                "--out",
                str(t / "sw"),
            ],
        ),
        Case(
            "sweep: eta grid 0, -1, NaN",
            lambda t: [
                "sweep",
                str(
                    _sweep_file(
                        t,
                        _SWEEP.format(
                            seed=1,
                            lr=0.001,
                            extra="  r:\n    algo: robust-dqn\n    params: {n_timesteps: 64}\n"
                            "    grid: {eta: [0, -1, .nan]}\n",
                        ),
                    )
                ),
                "--out",
                str(t / "sw"),
            ],
        ),
        Case(
            "sweep: seed 2**32",
            lambda t: [
                "sweep",
                str(_sweep_file(t, _SWEEP.format(seed=2**32, lr=0.001, extra=""))),
                "--out",
                str(t / "sw"),
            ],
        ),
        Case(
            "sweep: validation MDP equal to a test MDP's physics",
            lambda t: [
                "sweep",
                str(
                    _sweep_file(
                        t,
                        _SWEEP.format(seed=1, lr=0.001, extra="").replace(
                            "suite: cartpole", f"suite: {t / 'suite.yaml'}"
                        ),
                    )
                ),
                "--out",
                str(t / "sw"),
            ],
            setup=lambda t: (t / "suite.yaml").write_text(
                "name: s\nnominal_id: robust_rl/CartPole-v1\n"
                "uncertainty: {masspole: [0.05, 2.0]}\n"
                "test: {nominal: {}}\nvalidation: {v: {masspole: 0.1}}\n"
            ),
        ),
        Case(
            "sweep: non-Ray listener as --address",
            lambda t: [
                "sweep",
                str(_sweep_file(t, _SWEEP.format(seed=1, lr=0.001, extra=""))),
                "--out",
                str(t / "sw"),
                "--backend",
                "ray",
                "--address",
                f"127.0.0.1:{(t / 'port').read_text()}",
            ],
            stdin_hold=_listener,
        ),
        Case(
            "classify: --eta inf (legitimate)",
            lambda t: [
                "classify",
                "--dataset",
                "digits",
                "--method",
                "entropic",
                "--eta",
                "inf",
                "--epochs",
                "1",
                "--out",
                str(t / "c"),
            ],
            expect="ok",
        ),
    ]


def run_case(case: Case, tmp: Path) -> dict[str, object]:
    tmp.mkdir(parents=True)
    held = case.stdin_hold(tmp) if case.stdin_hold else None
    try:
        if case.setup:
            case.setup(tmp)
        argv = case.argv(tmp)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "robust_rl.cli", *argv],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp,
        )
        wall = time.perf_counter() - start
    finally:
        if held is not None:
            held.close()  # type: ignore[attr-defined]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "%|" not in ln]
    lines = [ln for ln in lines if "Warning" not in ln and not ln.startswith("  ")]
    traceback = "Traceback (most recent call last)" in proc.stderr
    payload = (tmp / "PAYLOAD").exists()
    code = {"refused": 2, "ok": 0, "failed": 1}[case.expect]
    good = proc.returncode == code and not traceback and not payload
    if case.expect == "refused":
        good = good and len(lines) == 1
    return {
        "case": case.name,
        "exit": proc.returncode,
        "traceback": traceback,
        "stderr_lines": len(lines),
        "seconds": round(wall, 1),
        "payload_ran": payload,
        "expected": case.expect,
        "as_expected": good,
        "message": (lines[-1] if lines else "")[:160],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = p.parse_args(argv)
    import tempfile

    work = Path(args.work or tempfile.mkdtemp(prefix="hostile_"))
    rows = []
    for i, case in enumerate(cases()):
        row = run_case(case, work / f"case{i:02d}")
        rows.append(row)
        print(
            f"{row['as_expected']!s:5} {row['exit']} {row['seconds']:6.1f}s {case.name}", flush=True
        )
    out = Path(args.out)
    atomic_write_text(out / "hostile_inputs.csv", csv_text(rows), force=True)
    n_ok = sum(bool(r["as_expected"]) for r in rows)
    md = [
        "# Hostile inputs against the command line",
        "",
        f"{n_ok} of {len(rows)} cases as expected; tracebacks: "
        f"{sum(bool(r['traceback']) for r in rows)}; payloads run: "
        f"{sum(bool(r['payload_ran']) for r in rows)}; slowest: "
        f"{max(float(r['seconds']) for r in rows):.1f} s (a fresh process each: imports included).",
        "",
        "| case | expected | exit | traceback | stderr lines | s | payload ran | as expected | message |",
        "|---|---|---:|---|---:|---:|---|---|---|",
    ]
    for r in rows:
        msg = str(r["message"]).replace("|", "\\|")
        md.append(
            f"| {r['case']} | {r['expected']} | {r['exit']} | {r['traceback']} | "
            f"{r['stderr_lines']} | {r['seconds']} | {r['payload_ran']} | {r['as_expected']} | "
            f"{msg} |"
        )
    md += ["", "    python experiments/hostile_inputs.py --out " + args.out, ""]
    atomic_write_text(out / "hostile_inputs.md", "\n".join(md), force=True)
    return 0 if n_ok == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
