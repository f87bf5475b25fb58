"""Run a model over a large tensor in batches, without autograd."""
from __future__ import annotations

from typing import Callable

import torch


def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """fn applied to x batch by batch under inference mode; results concatenated on the CPU."""
    with torch.inference_mode():
        return torch.cat([fn(x[i:i + batch_size]).cpu() for i in range(0, len(x), batch_size)])


def sample_batched(model, n: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """n samples drawn batch by batch from one seeded generator; results on the CPU."""
    with torch.inference_mode():
        return torch.cat([model.sample(min(batch_size, n - i), generator).cpu() for i in range(0, n, batch_size)])
