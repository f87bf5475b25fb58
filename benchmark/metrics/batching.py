"""Run a model over a large tensor in batches, without autograd."""
from __future__ import annotations

from typing import Callable

import torch


def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """fn applied to x batch by batch under inference mode; results concatenated on the CPU."""
    with torch.inference_mode():
        return torch.cat([fn(x[i:i + batch_size]).cpu() for i in range(0, len(x), batch_size)])
