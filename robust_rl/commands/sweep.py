"""``robust-rl sweep``: run a sweep file (seeds × hyperparameters × algorithms)."""

from __future__ import annotations

import argparse
import shlex
import time
from dataclasses import replace
from pathlib import Path

from robust_rl._files import FolderLock
from robust_rl.errors import InvalidArgumentError
from robust_rl.provenance import machine
from robust_rl.sweep import BACKENDS, TrialResult, load_sweep, run_sweep, write_summary

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``sweep`` subcommand."""
    p = subparsers.add_parser(
        "sweep",
        help="run a sweep file: seeds x hyperparameters x algorithms (grid or Optuna)",
        description="Run a sweep file (see robust_rl.sweep.spec): every trial of a grid, or an "
        "Optuna search stored in OUT/study.db. Trials and points finished earlier are reused, "
        "interrupted ones continue; then write OUT/summary.md, summary.csv, trials.csv and "
        "summary.png, ranked on the suite's validation split.",
    )
    p.add_argument("file", help="sweep YAML file")
    p.add_argument("--out", required=True, help="output folder (one sub-folder per trial)")
    p.add_argument(
        "--backend",
        default="local",
        choices=BACKENDS,
        help="run trials as local processes or as Ray tasks (default local)",
    )
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster address (--backend ray): HOST:PORT as `ray start --head` printed, "
        "ray://HOST:10001 or auto; default: a private Ray on this machine",
    )
    p.add_argument("--max-parallel", type=int, default=2, help="trials at once (default 2)")
    p.add_argument(
        "--n-trials",
        type=int,
        default=None,
        help="Optuna points per variant, overriding the file's search.n_trials",
    )
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar on stderr (trial lines still print)"
    )
    p.set_defaults(handler=run)


def _report(res: TrialResult) -> None:
    if res.status == "failed":
        first = (res.error or "").splitlines()[0]
        print(f"[failed ] {res.trial.name}: {first}", flush=True)
    elif res.status == "pruned":
        print(f"[pruned ] {res.trial.name} ({res.wall_time_s:.0f} s)", flush=True)
    else:
        score = res.tune_score
        text = "n/a" if score is None else f"{score:.1f}"
        print(
            f"[{res.status:7}] {res.trial.name}: validation mean {text} ({res.wall_time_s:.0f} s)",
            flush=True,
        )


def _command(args: argparse.Namespace) -> list[str]:
    """The command line that reproduces this sweep."""
    cmd = ["robust-rl", "sweep", args.file, "--out", args.out]
    if args.backend != "local":
        cmd += ["--backend", args.backend]
    if args.address:
        cmd += ["--address", args.address]
    if args.n_trials is not None:
        cmd += ["--n-trials", str(args.n_trials)]
    return cmd


def run(args: argparse.Namespace) -> int:
    """Run the sweep; exit code 1 if a trial failed."""
    if args.address is not None and args.backend != "ray":
        raise InvalidArgumentError("--address applies to --backend ray only")
    start = time.perf_counter()
    spec = load_sweep(args.file)
    if args.n_trials is not None:
        if spec.search.method != "optuna":
            raise InvalidArgumentError("--n-trials applies to sweeps with search.method optuna")
        if args.n_trials < 1:
            raise InvalidArgumentError(f"--n-trials must be >= 1, got {args.n_trials}")
        spec = replace(spec, search=replace(spec.search, n_trials=args.n_trials))
    budget = ", ".join(f"{k} {n}" for k, n in spec.budget().items())
    print(f"sweep {spec.name} ({spec.search.method}; points per variant: {budget}) -> {args.out}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InvalidArgumentError(f"--out {out} is a file; give a folder")
    from robust_rl._progress import Progress

    n_trials = sum(spec.budget().values()) * len(spec.seeds)
    bars: list[Progress] = []  # drawn from the first result on: an early error stays one line

    def on_result(res: TrialResult) -> None:
        _report(res)
        if not bars:
            bars.append(Progress(n_trials, f"sweep {spec.name}", not args.quiet, unit="trial"))
        bars[0].update()

    with FolderLock(out, f"robust-rl sweep {args.file}"):
        try:
            results = run_sweep(
                spec,
                args.out,
                backend=args.backend,
                max_parallel=args.max_parallel,
                address=args.address,
                on_result=on_result,
            )
        finally:
            for bar in bars:
                bar.close()
        total = sum(r.wall_time_s for r in results)
        footer = (
            f"Command: `{shlex.join(_command(args))}`. "
            f"Machine: {machine()}. Wall time of this invocation "
            f"{(time.perf_counter() - start) / 60:.1f} min; training + evaluation time summed over "
            f"trials {total / 60:.1f} min (per trial: `wall_time_s` in trials.csv; trials finished "
            "by an earlier invocation are reused, not rerun)."
        )
        for path in write_summary(results, args.out, spec=spec, title=spec.name, footer=footer):
            print(f"wrote {path}")
    failed = sum(r.status == "failed" for r in results)
    if failed:
        print(f"{failed} of {len(results)} trials failed (see summary.md)")
        return 1
    return 0
