"""Shared test setup: one torch thread (CI has 2 cores; tests must not oversubscribe them), and a
checkpoint signing key of the test session's own (never the user's)."""

import os
import tempfile

import torch

torch.set_num_threads(1)

_KEY_DIR = tempfile.mkdtemp(prefix="robust_rl_test_key_")
# inherited by the CLI subprocesses the tests start
os.environ["ROBUST_RL_KEY_FILE"] = os.path.join(_KEY_DIR, "checkpoint.key")
