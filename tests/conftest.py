"""Shared test setup: one torch thread (CI has 2 cores; tests must not oversubscribe them)."""

import torch

torch.set_num_threads(1)
