import math

import pytest
import torch
from torch import nn

from aebench.catalog.models import build_model
from aebench.run.evaluation import EvalConfig, evaluate
from aebench.run.optim import AdamNormGrad, make_optimizer
from aebench.run.training import TrainConfig, fit, validation_terms
from models.contract import AutoEncoder, HyperparameterError, Hyperparameters


class LinearAE(AutoEncoder):
    """A deterministic toy model: its validation loss is a pure function of its weights."""

    def __init__(self, shape=(1, 8, 8), latent=4, nan_after_steps=None):
        super().__init__(shape, Hyperparameters(latent_dim=latent))
        self.enc, self.dec = nn.Linear(64, latent), nn.Linear(latent, 64)
        self.steps, self.nan_after_steps = 0, nan_after_steps

    def encode(self, x):
        return self.enc(x.flatten(1))

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, *self.image_shape)

    def loss(self, x):
        rec = ((self.reconstruct(x) - x) ** 2).flatten(1).sum(1).mean()
        if self.training and self.nan_after_steps is not None and self.steps >= self.nan_after_steps:
            rec = rec * float("nan")
        return {"loss": rec, "rec": rec}

    def after_step(self):
        self.steps += 1


def test_loss_decreases_and_history_has_every_term(digits):
    result = fit(LinearAE(), digits, TrainConfig(epochs=5, batch_size=64, patience=5), seed=0, progress=False)
    assert result.status == "ok" and result.epochs_run == 5 and len(result.history) == 5
    assert set(result.history[0]) == {"epoch", "train_loss", "train_rec", "val_loss", "val_rec", "seconds"}
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_best_validation_weights_are_restored(digits):
    model = LinearAE()
    # a large learning rate makes the validation loss go up and down; the best epoch is not the last
    result = fit(model, digits, TrainConfig(epochs=8, batch_size=64, lr=0.3, patience=8), seed=0, progress=False)
    losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == 1 + losses.index(min(losses))
    assert validation_terms(model, digits.val_x, 1000)["loss"] == pytest.approx(min(losses), rel=1e-6)


def test_early_stopping_after_patience(digits):
    # Only the encoder's bias trains, and the decoder ignores z: the validation loss never changes,
    # so epoch 1 stays best and the run stops after `patience` epochs without improvement.
    model = LinearAE()
    for p in model.parameters():
        p.requires_grad_(False)
    model.enc.bias.requires_grad_(True)
    with torch.no_grad():
        model.dec.weight.zero_()
    result = fit(model, digits, TrainConfig(epochs=50, batch_size=64, patience=3), seed=0, progress=False)
    assert result.best_epoch == 1 and result.epochs_run == 4


def test_non_finite_loss_fails_the_run_with_its_reason(digits):
    result = fit(LinearAE(nan_after_steps=25), digits, TrainConfig(epochs=5, batch_size=64), seed=0, progress=False)
    assert result.status == "failed" and "non-finite loss" in result.reason and "epoch 2" in result.reason
    assert result.epochs_run == 1


def test_same_seed_same_numbers_other_seed_other_numbers(digits):
    def run(seed):
        torch.manual_seed(seed)
        model = build_model("vae", digits.image_shape, {"latent_dim": 4, "arch": "mlp"})
        fit(model, digits, TrainConfig(epochs=2, batch_size=64), seed=seed, progress=False)
        return {r["metric"]: r["value"] for r in evaluate(model, digits, EvalConfig(knn_ks=(5,)))}

    first, second, other = run(0), run(0), run(1)
    assert first == second
    assert first["recon_sse"] != other["recon_sse"]


def test_adam_normgrad_divides_each_gradient_by_its_norm():
    p = nn.Parameter(torch.zeros(3))
    opt = AdamNormGrad([p], lr=0.1)
    p.grad = torch.tensor([3.0, 4.0, 0.0])
    opt.step()
    # after normalisation the gradient is [0.6, 0.8, 0]; Adam's first step moves by lr * sign
    torch.testing.assert_close(p.grad, torch.tensor([0.6, 0.8, 0.0]))
    torch.testing.assert_close(p.detach(), torch.tensor([-0.1, -0.1, 0.0]), atol=1e-6, rtol=0)
    # the same update for any gradient scale: the norm is taken out
    q = nn.Parameter(torch.zeros(3))
    opt_q = AdamNormGrad([q], lr=0.1)
    q.grad = torch.tensor([300.0, 400.0, 0.0])
    opt_q.step()
    torch.testing.assert_close(q.detach(), p.detach())


@pytest.mark.parametrize("field,value", [("epochs", 0), ("batch_size", -1), ("lr", 0.0), ("optimizer", "sgd")])
def test_bad_training_settings_are_clear_errors(field, value):
    with pytest.raises(HyperparameterError, match=field):
        TrainConfig(**{field: value})


def test_make_optimizer_names_choices():
    from aebench.errors import UserError

    with pytest.raises(UserError, match="adam, adam-normgrad"):
        make_optimizer("rmsprop", [nn.Parameter(torch.zeros(1))], 0.1)
    assert math.isclose(make_optimizer("adam", [nn.Parameter(torch.zeros(1))], 0.1).param_groups[0]["lr"], 0.1)
