"""The checkpoint format: what a worker writes, the report reads back as the same model."""
import pytest
import torch

from aebench.catalog.models import MODELS, build_model
from aebench.store.checkpoints import checkpoint_bytes, load_model, read_checkpoint


@pytest.mark.parametrize("name", list(MODELS))
def test_a_checkpoint_rebuilds_the_same_model(tmp_path, name):
    torch.manual_seed(0)
    hparams = {"latent_dim": 3, "arch": "mlp"} | ({"K": 4} if "K" in MODELS[name].Config.field_names() else {})
    model = build_model(name, (1, 8, 8), hparams).eval()
    path = tmp_path / "run.pt"
    path.write_bytes(checkpoint_bytes(model, name, hparams, "run"))
    loaded = load_model(path)
    assert type(loaded) is type(model) and not loaded.training
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), model.encode(x)) and torch.equal(loaded.reconstruct(x), model.reconstruct(x))
    state = read_checkpoint(path.read_bytes())
    assert (state["model"], state["run_id"], tuple(state["image_shape"]), state["hparams"]) == (name, "run", (1, 8, 8), hparams)
