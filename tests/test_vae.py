import math

import pytest
import torch
import torch.nn.functional as F

from aebench.catalog.models import build_model
from models.contract import HyperparameterError


def test_vae_loss_terms_match_hand_computation():
    torch.manual_seed(0)
    model = build_model("vae", (1, 8, 8), {"latent_dim": 3, "arch": "mlp"})
    x = torch.rand(4, 1, 8, 8)
    torch.manual_seed(5)
    terms = model.loss(x)
    # recompute with the same noise by hand
    torch.manual_seed(5)
    mu, logvar = model.encoder(x).chunk(2, dim=1)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    p = torch.sigmoid(model.decoder(z))
    rec = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(dim=(1, 2, 3)).mean()
    kl = (0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)).mean()
    assert terms["rec"].item() == pytest.approx(rec.item(), rel=1e-4)
    assert terms["kl"].item() == pytest.approx(kl.item(), rel=1e-5)
    assert terms["loss"].item() == pytest.approx(rec.item() + kl.item(), rel=1e-4)


def test_gaussian_likelihood_is_scaled_squared_error():
    model = build_model("vae", (1, 8, 8), {"likelihood": "gaussian", "sigma": 0.5, "arch": "mlp"})
    x, logits = torch.rand(2, 1, 8, 8), torch.randn(2, 1, 8, 8)
    expected = ((torch.sigmoid(logits) - x) ** 2).sum(dim=(1, 2, 3)) / (2 * 0.25)
    torch.testing.assert_close(model.reconstruction_term(logits, x), expected)


def test_kl_is_zero_for_the_prior_itself():
    model = build_model("vae", (1, 8, 8), {"latent_dim": 4, "arch": "mlp"})
    zeros = torch.zeros(2, 4)
    assert model.kl_term(zeros, zeros, zeros).abs().max().item() == 0.0
    one = torch.tensor([[1.0, 0, 0, 0]])
    assert model.kl_term(one, one, torch.zeros(1, 4)).item() == pytest.approx(0.5)


def test_encode_is_the_posterior_mean_and_outputs_are_images():
    model = build_model("vae", (1, 28, 28), {"latent_dim": 6})
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(model.encode(x), model.encoder(x)[:, :6])
    torch.testing.assert_close(model.encode(x), model.encode(x))  # deterministic
    samples = model.sample(5, torch.Generator().manual_seed(0))
    assert samples.shape == (5, 1, 28, 28) and samples.min() >= 0 and samples.max() <= 1
    again = model.sample(5, torch.Generator().manual_seed(0))
    assert torch.equal(samples, again)
    assert model.reconstruct(x).shape == x.shape


@pytest.mark.parametrize("overrides,field", [({"likelihood": "poisson"}, "likelihood"), ({"sigma": 0}, "sigma"),
                                             ({"latent_dim": 0}, "latent_dim"), ({"arch": "resnet"}, "arch")])
def test_bad_hyperparameters_name_the_field(overrides, field):
    with pytest.raises(HyperparameterError, match=field):
        build_model("vae", (1, 8, 8), overrides)


def test_string_overrides_are_converted_and_checked():
    model = build_model("vae", (1, 8, 8), {"latent_dim": "5", "sigma": "0.2"})
    assert model.config.latent_dim == 5 and math.isclose(model.config.sigma, 0.2)
    with pytest.raises(HyperparameterError, match="expected an integer"):
        build_model("vae", (1, 8, 8), {"latent_dim": "five"})
    with pytest.raises(HyperparameterError, match="no hyperparameter"):
        build_model("vae", (1, 8, 8), {"K": "5"})


def test_bernoulli_term_is_stable_for_extreme_logits():
    model = build_model("vae", (1, 8, 8), {"arch": "mlp"})
    logits = torch.full((1, 1, 8, 8), 200.0)
    x = torch.zeros(1, 1, 8, 8)
    value = model.reconstruction_term(logits, x)
    assert torch.isfinite(value).all()
    torch.testing.assert_close(value, F.binary_cross_entropy_with_logits(logits, x, reduction="sum").reshape(1))
