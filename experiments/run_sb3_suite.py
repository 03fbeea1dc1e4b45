"""Run Stable-Baselines3's own test suite with the robust agents in place of DQN, SAC and TD3.

Downloads the SB3 source distribution of the installed version with ``pip download`` (SB3's code
is never committed here), unpacks it in a work folder, adds a ``conftest.py`` that replaces
``stable_baselines3.DQN``, ``SAC`` and ``TD3`` by :class:`robust_rl.RobustDQN`,
:class:`robust_rl.RobustSAC` and :class:`robust_rl.RobustTD3` (robust defaults: ``radius=0.01``,
``eta=0.1``, RT-MLMC at ``L = 4``) before the test modules import them, keeps the tests that use
one of the three (a parameter or the test's source names one), runs them, and writes a summary:
counts, and each failure with its reason, classified as

* ``refused``: the test needs an observation space that is not a Box or a Dict of Boxes; the
  robust agent refuses it with :class:`~robust_rl.common.UnsupportedSpaceError` (expected);
* ``failure``: anything else (a bug or an SB3 behaviour the robust agents do not reproduce).

A test that hard-codes a name the robust agents differ in by design is adapted in the unpacked
copy before the run (:data:`ADAPTATIONS`: TensorBoard runs are named after the class,
``RobustDQN_1`` for ``DQN_1``), so it still checks its behaviour; the summary lists every
adaptation.

Command (one CPU thread; about an hour on a 2-core VM)::

    python experiments/run_sb3_suite.py --out experiments/results/sb3_suite
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import stable_baselines3

from robust_rl.io import atomic_write_text

#: SB3 test files that name DQN, SAC or TD3
TEST_FILES: tuple[str, ...] = (
    "test_run.py",
    "test_save_load.py",
    "test_deterministic.py",
    "test_dict_env.py",
    "test_her.py",
    "test_predict.py",
    "test_callbacks.py",
    "test_spaces.py",
    "test_cnn.py",
    "test_custom_policy.py",
    "test_identity.py",
    "test_n_step_replay.py",
    "test_sde.py",
    "test_tensorboard.py",
    "test_train_eval_mode.py",
    "test_vec_normalize.py",
    "test_gae.py",
)
# test_logger.py and test_utils.py also name DQN (a few tests) but need pandas, which SB3's
# test extra installs and this project does not

CONFTEST = '''
"""Written by robust_rl's experiments/run_sb3_suite.py: robust agents in place of DQN, SAC, TD3."""
import inspect
import json
import os

import stable_baselines3
import torch

import robust_rl
torch.set_num_threads(1)
ROBUST = {"DQN": robust_rl.RobustDQN, "SAC": robust_rl.RobustSAC, "TD3": robust_rl.RobustTD3}
for _name, _cls in ROBUST.items():
    setattr(stable_baselines3, _name, _cls)
_REPORT = os.environ["ROBUST_RL_SB3_REPORT"]


def _uses_robust(item):
    callspec = getattr(item, "callspec", None)
    if callspec is not None and any(
        isinstance(v, type) and v in ROBUST.values() for v in callspec.params.values()
    ):
        return True
    if callspec is not None and any(
        isinstance(v, type) and issubclass(v, stable_baselines3.common.base_class.BaseAlgorithm)
        for v in callspec.params.values()
    ):
        return False  # parametrised over other algorithms only (A2C, PPO, DDPG)
    try:
        source = inspect.getsource(item.function)
    except (OSError, TypeError):
        return False
    return any(name in source for name in ROBUST)


def pytest_collection_modifyitems(config, items):
    keep = [i for i in items if _uses_robust(i)]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep


def pytest_runtest_logreport(report):
    if report.when != "call" and not (report.failed or report.skipped):
        return
    if report.when != "call" and report.passed:
        return
    reason = ""
    kind = ""
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        reason = crash.message if crash is not None else str(report.longrepr)[-500:]
        kind = "failure"
        # the refusal may be the cause of another error (e.g. raised inside pytest.warns)
        if "UnsupportedSpaceError" in str(report.longrepr) and "UnsupportedSpaceError" not in reason:
            reason += " [raised by: UnsupportedSpaceError]"
    elif report.skipped:
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
    with open(_REPORT, "a") as f:
        f.write(json.dumps({"nodeid": report.nodeid, "when": report.when,
                            "outcome": report.outcome, "kind": kind,
                            "reason": reason[:2000]}) + "\\n")
'''


@dataclass(frozen=True)
class Args:
    """Command-line arguments.

    :ivar out: folder for ``summary.md`` and ``results.jsonl`` (committed).
    :ivar workdir: where the SB3 sources are downloaded and unpacked (not committed).
    :ivar files: SB3 test files to run.
    :ivar extra: extra pytest arguments (e.g. ``-x``).
    """

    out: Path
    workdir: Path
    files: tuple[str, ...]
    extra: tuple[str, ...]


def parse_args() -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("experiments/results/sb3_suite"))
    p.add_argument("--workdir", type=Path, default=Path("/tmp/robust_rl_sb3_suite"))
    p.add_argument("--files", nargs="+", default=list(TEST_FILES))
    p.add_argument("--pytest-arg", action="append", default=[], dest="extra")
    a = p.parse_args()
    return Args(a.out, a.workdir, tuple(a.files), tuple(a.extra))


def fetch_sources(workdir: Path, version: str) -> Path:
    """Download and unpack SB3's sdist; return its ``tests`` folder."""
    root = workdir / f"stable_baselines3-{version}"
    if not (root / "tests").is_dir():
        workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             f"stable-baselines3=={version}", "-d", str(workdir)],
            check=True,
        )  # fmt: skip
        with tarfile.open(workdir / f"stable_baselines3-{version}.tar.gz") as tar:
            tar.extractall(workdir, filter="data")
    return root / "tests"


#: ``(file, text in SB3's test, replacement, why)``: edits of the unpacked tests
ADAPTATIONS: tuple[tuple[str, str, str, str], ...] = (
    (
        "test_callbacks.py",
        'tmp_path / "DQN_1"',
        'tmp_path / f"{DQN.__name__}_1"',
        "TensorBoard run folder: named after the class, RobustDQN_1 where SB3 expects DQN_1",
    ),
)


def adapt_tests(tests: Path) -> list[str]:
    """Apply :data:`ADAPTATIONS` to the unpacked tests (idempotent); one line per edit."""
    done = []
    for name, old, new, why in ADAPTATIONS:
        path = tests / name
        text = path.read_text()
        if old in text:
            path.write_text(text.replace(old, new))
        if new not in path.read_text():
            raise RuntimeError(f"{name}: cannot adapt {old!r} (SB3's test changed?)")
        done.append(f"`{name}`: `{old}` → `{new}` ({why})")
    return done


#: a failure whose reason contains one of these is the refusal of a non-Box observation space
REFUSAL_MARKERS: tuple[str, ...] = (
    "UnsupportedSpaceError",
    "observation_space must be a gymnasium",
)


def classify(record: dict) -> dict:
    """Mark a failed test ``refused`` (non-Box observation refused clearly) or ``failure``."""
    if record["outcome"] != "failed":
        return record
    refused = any(m in record["reason"] for m in REFUSAL_MARKERS)
    return {**record, "kind": "refused" if refused else "failure"}


def summarise(
    records: list[dict],
    version: str,
    files: tuple[str, ...],
    wall_s: float,
    adaptations: Sequence[str] = (),
) -> str:
    """Markdown summary: counts per outcome and file, then every failure with its reason."""
    records = [classify(r) for r in records]
    outcome = Counter()
    for r in records:
        if r["outcome"] == "failed":
            outcome[r["kind"]] += 1
        else:
            outcome[r["outcome"]] += 1
    lines = [
        f"# Stable-Baselines3 {version} test suite with the robust agents",
        "",
        "`stable_baselines3.DQN`, `SAC` and `TD3` replaced by `RobustDQN`, `RobustSAC` and "
        "`RobustTD3` (defaults: radius 0.01, eta 0.1, RT-MLMC, L = 4); only the tests that use "
        "one of them are run.",
        "",
        f"Files: {', '.join(files)}.",
        "",
        *(
            ["Adapted before the run (names that differ by design):", ""]
            + [f"- {a}" for a in adaptations]
            + [""]
            if adaptations
            else []
        ),
        f"Wall time: {wall_s / 60:.1f} min (one torch thread).",
        "",
        "| outcome | tests |",
        "|---|---:|",
        f"| passed | {outcome['passed']} |",
        f"| skipped | {outcome['skipped']} |",
        f"| refused (non-Box observation, UnsupportedSpaceError) | {outcome['refused']} |",
        f"| failed (other) | {outcome['failure']} |",
        "",
    ]
    for kind, title in (("failure", "Failures"), ("refused", "Refused (expected)")):
        rows = [r for r in records if r["outcome"] == "failed" and r["kind"] == kind]
        if rows:
            lines += [f"## {title}", "", "| test | reason |", "|---|---|"]
            for r in rows:
                reason = " ".join(r["reason"].split())[:300].replace("|", "\\|")
                lines.append(f"| `{r['nodeid']}` | {reason} |")
            lines.append("")
    skipped = [r for r in records if r["outcome"] == "skipped"]
    if skipped:
        reasons = Counter(" ".join(r["reason"].split())[:200] for r in skipped)
        lines += ["## Skip reasons", "", "| reason | tests |", "|---|---:|"]
        lines += [f"| {k.replace('|', '/')} | {v} |" for k, v in reasons.most_common()]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    version = stable_baselines3.__version__
    tests = fetch_sources(args.workdir, version)
    (tests / "conftest.py").write_text(CONFTEST)
    adaptations = adapt_tests(tests)
    report = args.workdir / "results.jsonl"
    report.unlink(missing_ok=True)
    env = {**os.environ, "ROBUST_RL_SB3_REPORT": str(report), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
         *args.files, *args.extra],
        cwd=tests, env=env, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - start
    records = (
        [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    )
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "results.jsonl", report.read_text() if records else "", force=True)
    summary = summarise(records, version, args.files, wall, adaptations)
    atomic_write_text(args.out / "summary.md", summary + "\n", force=True)
    print(summary)


if __name__ == "__main__":
    main()
