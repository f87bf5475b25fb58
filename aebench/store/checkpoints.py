"""The checkpoint format, written by a worker and read by the report: one module owns both sides.

A checkpoint is torch.save of {"model", "image_shape", "hparams", "state_dict", "run_id"}: enough to
rebuild the model through the registry, with nothing pickled but tensors and plain values.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch

from aebench.catalog.models import build_model
from models.contract import AutoEncoder


def checkpoint_bytes(model: AutoEncoder, model_name: str, hparams: dict, run_id: str) -> bytes:
    """The serialised checkpoint of a trained model (bytes travel from a worker to the driver)."""
    buffer = io.BytesIO()
    torch.save({"model": model_name, "image_shape": tuple(model.image_shape), "hparams": hparams,
                "state_dict": model.state_dict(), "run_id": run_id}, buffer)
    return buffer.getvalue()


def read_checkpoint(source: Path | bytes) -> dict:
    """The checkpoint's contents, from a file or from the bytes checkpoint_bytes made."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    return torch.load(stream, map_location="cpu", weights_only=True)


def load_model(source: Path | bytes) -> AutoEncoder:
    """The model a checkpoint holds, rebuilt from its registry name and hyperparameters, in eval mode."""
    state = read_checkpoint(source)
    model = build_model(state["model"], tuple(state["image_shape"]), state["hparams"])
    model.load_state_dict(state["state_dict"])
    return model.eval()
