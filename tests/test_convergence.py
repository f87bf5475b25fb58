"""Training to convergence: KL warm-up, patience not counted during it, and why each run stopped."""
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from aebench.catalog.models import build_model
from aebench.run.training import TrainConfig, fit, validation_terms, warmup_weight
from models.contract import AutoEncoder, Hyperparameters


@dataclass
class WarmConfig(Hyperparameters):
    warmup_epochs: int = 0


class ConstantLoss(AutoEncoder):
    """Its loss never improves after the first epoch (zero gradient), and it reports the warm-up
    weight it was trained with as a term, so the history shows what the loop set."""

    Config = WarmConfig

    def __init__(self, warmup_epochs=0):
        super().__init__((1, 8, 8), WarmConfig(latent_dim=2, warmup_epochs=warmup_epochs))
        self.w = nn.Parameter(torch.zeros(1))

    def loss(self, x):
        weight = torch.full((), self.warmup_weight)
        return {"loss": 1.0 + 0.0 * self.w.sum() + 0.0 * x.mean(), "weight": weight}


def test_warmup_weight_rises_linearly_to_one_as_the_authors_anneal_it():
    assert [warmup_weight(e, 4) for e in range(1, 7)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_weight(1, 0) == 1.0


def test_patience_counts_only_after_the_warmup_and_the_history_shows_the_weight(digits):
    config = TrainConfig(epochs=50, batch_size=256, patience=2)
    plain = fit(ConstantLoss(), digits, config, seed=0, progress=False)
    assert (plain.stopped, plain.epochs_run, plain.best_epoch) == ("patience", 3, 1)
    warm = fit(ConstantLoss(warmup_epochs=5), digits, config, seed=0, progress=False)
    assert (warm.stopped, warm.epochs_run) == ("patience", 7)  # 5 warm-up epochs, then 2 without progress
    assert [round(h["warmup_weight"], 6) for h in warm.history] == [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0]
    assert [round(h["train_weight"], 6) for h in warm.history][:3] == [0.2, 0.4, 0.6]  # what the loss saw
    assert all(h["val_weight"] == 1.0 for h in warm.history)  # validation scores the full objective
    assert "warmup_weight" not in plain.history[0]


def test_a_run_ended_by_the_epoch_cap_says_so(digits):
    result = fit(ConstantLoss(), digits, TrainConfig(epochs=3, batch_size=256, patience=10), seed=0, progress=False)
    assert (result.status, result.stopped, result.epochs_run) == ("ok", "cap", 3)


def test_validation_draws_the_same_noise_every_time_and_leaves_the_training_stream_alone(digits):
    torch.manual_seed(0)
    model = build_model("vae", (1, 8, 8), {"latent_dim": 3, "arch": "mlp"})
    torch.manual_seed(5)
    expected_next = torch.rand(3)
    torch.manual_seed(5)
    first = validation_terms(model, digits.val_x, 64)
    assert torch.equal(torch.rand(3), expected_next)  # the global RNG is where it was
    assert validation_terms(model, digits.val_x, 64) == first  # same noise, same value


@pytest.mark.parametrize("name", ["vae", "beta-vae", "vampprior"])
def test_every_kl_model_warms_up_its_kl_the_same_way(name, digits):
    torch.manual_seed(0)
    model = build_model(name, (1, 8, 8), {"latent_dim": 3, "arch": "mlp", "warmup_epochs": 4}
                        | ({"K": 5} if name == "vampprior" else {}))
    model.prepare(digits.train_x, torch.Generator().manual_seed(0))
    x = digits.train_x[:32]
    losses = {}
    for weight in (0.0, 0.5, 1.0):
        model.warmup_weight = weight
        torch.manual_seed(1)
        terms = model.loss(x)
        losses[weight] = terms
    rec, kl = losses[1.0]["rec"], losses[1.0]["kl"]
    assert torch.allclose(losses[0.0]["loss"], rec)  # no KL at all at weight 0
    assert torch.allclose(losses[0.5]["loss"], rec + 0.5 * model.kl_weight * kl)
    assert torch.allclose(losses[1.0]["loss"], rec + model.kl_weight * kl)


def test_wae_and_swae_have_no_warmup():
    for name in ("wae", "swae"):
        model = build_model(name, (1, 8, 8), {"latent_dim": 3, "arch": "mlp"} | ({"K": 5} if name == "swae" else {}))
        assert model.warmup_epochs == 0
