"""Subcommands of the ``robust-rl`` command line (see :mod:`robust_rl.cli`)."""
