"""``robust-rl train``: train an SB3 or robust agent from a YAML config."""

from __future__ import annotations

import argparse

import torch

from robust_rl.configs import resolve_config, shipped_configs
from robust_rl.errors import InvalidArgumentError
from robust_rl.training import ALGOS, load_config, train


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train an SB3 or robust agent on a (perturbed) gymnasium env",
        description="Train an agent from an RL-Zoo style YAML file (see experiments/configs/). "
        "Writes OUT/model.zip, OUT/config.yaml and an atomic checkpoint OUT/checkpoint.pkl "
        "(model, optimizer, replay buffer, environments, random states) that --resume "
        "continues exactly; a checkpoint of another algorithm, env, seed or config is refused.",
    )
    p.add_argument("--algo", required=True, choices=sorted(ALGOS), help="algorithm")
    p.add_argument("--env", required=True, help="gymnasium id, e.g. robust_rl/CartPole-v1")
    p.add_argument(
        "--config",
        default=None,
        help="YAML hyperparameter file, or the name of a shipped one (default: the shipped "
        "config for ALGO on ENV, e.g. robust_dqn_cartpole; shipped: "
        + ", ".join(shipped_configs())
        + ")",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--tensorboard-log", default=None, help="TensorBoard folder (run ALGO_N)")
    p.add_argument("--timesteps", type=int, default=None, help="override n_timesteps")
    p.add_argument(
        "--checkpoint-freq",
        type=int,
        default=10_000,
        help="environment steps between checkpoints (default 10000)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from OUT/checkpoint.pkl (signed with your key, see --trust)",
    )
    p.add_argument(
        "--force", action="store_true", help="start afresh over OUT/model.zip or an unfinished run"
    )
    p.add_argument(
        "--trust",
        action="store_true",
        help="--resume from a checkpoint not signed with your key (another machine's or user's): "
        "reading it runs the code its pickles name, so only for files you trust",
    )
    p.add_argument(
        "--device", default="auto", help="torch device: auto, cpu, cuda, cuda:N (default auto)"
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: small networks run fastest single-threaded, "
        "and parallel runs do not oversubscribe the cores)",
    )
    p.add_argument("--no-progress-bar", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.torch_threads < 1:
        raise InvalidArgumentError(
            f"--torch-threads must be a positive integer, got {args.torch_threads}"
        )
    torch.set_num_threads(args.torch_threads)
    config = load_config(resolve_config(args.config, args.algo, args.env))
    if args.timesteps is not None:
        config["n_timesteps"] = args.timesteps
    result = train(
        args.algo,
        args.env,
        config,
        args.seed,
        args.out,
        tensorboard_log=args.tensorboard_log,
        resume=args.resume,
        force=args.force,
        trust=args.trust,
        progress_bar=not args.no_progress_bar,
        checkpoint_freq=args.checkpoint_freq,
        device=args.device,
    )
    resumed = f" (resumed from step {result.resumed_from})" if result.resumed_from else ""
    print(f"saved {result.model_path} after {result.num_timesteps} steps{resumed}")
    return 0
