"""``robust-rl sweep``: run a sweep file (seeds × hyperparameters × algorithms)."""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import time

from robust_rl.errors import InvalidArgumentError
from robust_rl.sweep import BACKENDS, TrialResult, load_sweep, run_sweep, write_summary


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="run a sweep file: seeds x hyperparameters x algorithms",
        description="Run every trial of a sweep file (see robust_rl.sweep), skipping trials "
        "finished earlier, then write OUT/summary.md, summary.csv, trials.csv and summary.png.",
    )
    p.add_argument("file", help="sweep YAML file")
    p.add_argument("--out", required=True, help="output folder (one sub-folder per trial)")
    p.add_argument("--backend", default="local", choices=BACKENDS)
    p.add_argument("--address", default=None, help="Ray cluster address (ray backend)")
    p.add_argument("--max-parallel", type=int, default=2, help="trials at once (default 2)")
    p.set_defaults(handler=run)


def _report(res: TrialResult) -> None:
    if res.status == "failed":
        first = (res.error or "").splitlines()[0]
        print(f"[failed ] {res.trial.name}: {first}", flush=True)
    else:
        mean = sum(res.suite.values()) / max(1, len(res.suite))
        print(
            f"[{res.status:7}] {res.trial.name}: suite mean {mean:.1f} ({res.wall_time_s:.0f} s)",
            flush=True,
        )


def _command(args: argparse.Namespace) -> list[str]:
    """The command line that reproduces this sweep."""
    cmd = ["robust-rl", "sweep", args.file, "--out", args.out]
    if args.backend != "local":
        cmd += ["--backend", args.backend]
    if args.address:
        cmd += ["--address", args.address]
    return cmd


def run(args: argparse.Namespace) -> int:
    if args.address is not None and args.backend != "ray":
        raise InvalidArgumentError("--address applies to --backend ray only")
    start = time.perf_counter()
    name, trials = load_sweep(args.file)
    print(f"sweep {name}: {len(trials)} trials -> {args.out}", flush=True)
    results = run_sweep(
        trials,
        args.out,
        backend=args.backend,
        max_parallel=args.max_parallel,
        address=args.address,
        on_result=_report,
    )
    total = sum(r.wall_time_s for r in results)
    footer = (
        f"Command: `{shlex.join(_command(args))}`. "
        f"Machine: {platform.platform()}, {os.cpu_count()} CPU cores. Wall time of this invocation "
        f"{(time.perf_counter() - start) / 60:.1f} min; training + evaluation time summed over "
        f"trials {total / 60:.1f} min (per trial: `wall_time_s` in trials.csv; trials finished "
        "by an earlier invocation are reused, not rerun)."
    )
    for path in write_summary(results, args.out, title=name, footer=footer):
        print(f"wrote {path}")
    failed = sum(r.status == "failed" for r in results)
    if failed:
        print(f"{failed} of {len(results)} trials failed (see summary.md)")
        return 1
    return 0
