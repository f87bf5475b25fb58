"""beta-VAE, WAE-MMD and VampPrior: loss terms by hand, the MMD estimator, the VampPrior prior, training."""
import math

import pytest
import torch
from torch import nn

from aebench.catalog.models import MODELS, build_model
from aebench.run.evaluation import evaluate
from aebench.run.profiles import get_profile
from aebench.run.runner import plan
from aebench.run.training import fit
from baselines.beta_vae import BetaVAE
from baselines.vae import VAE
from baselines.vampprior import VampPrior, log_normal_diag, log_normal_diag_pairs
from baselines.wae import WAE, imq_kernel, imq_mmd
from models.contract import HyperparameterError
from models.networks import Reshape

AUTHORS_SCALES = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]  # the WAE authors' IMQ scales, written out again here
TINY_SHAPE = (1, 1, 2)  # two-pixel images: every term can be worked out with a pencil
X_TINY = torch.tensor([[0.0, 1.0], [1.0, 1.0]]).view(2, *TINY_SHAPE)


# --- helpers: fixed tiny networks and the textbook formulas in plain floats


def linear(weight, bias):
    layer = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))
    return layer


def tiny_encoder(weight, bias):
    return nn.Sequential(nn.Flatten(), linear(weight, bias))


def tiny_decoder(weight, bias):
    return nn.Sequential(linear(weight, bias), Reshape(*TINY_SHAPE))


def sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


def bernoulli_nll(pixels, logits):
    return -sum(x * math.log(sigmoid(l)) + (1 - x) * math.log(1 - sigmoid(l)) for x, l in zip(pixels, logits))


def normal_pdf(z, mean, var):
    return math.exp(-(z - mean) ** 2 / (2 * var)) / math.sqrt(2 * math.pi * var)


@pytest.fixture
def fixed_eps(monkeypatch):
    """Every reparameterisation draw eps = 2, so that z is known in advance."""
    monkeypatch.setattr(torch, "randn_like", lambda t, **kw: torch.full_like(t, 2.0))


# --- registry


def test_the_baselines_are_registered_and_beta_vae_reuses_the_vae():
    assert MODELS["beta-vae"] is BetaVAE and MODELS["wae"] is WAE and MODELS["vampprior"] is VampPrior
    assert issubclass(BetaVAE, VAE) and issubclass(VampPrior, VAE)
    assert BetaVAE.loss is VAE.loss and VampPrior.loss is VAE.loss  # one loss, no copies


# --- beta-VAE


def test_beta_vae_loss_terms_by_hand(fixed_eps):
    pixels = math.prod(TINY_SHAPE)
    model = build_model("beta-vae", TINY_SHAPE, {"latent_dim": 1, "beta_norm": 4.0 / pixels})  # raw beta 4
    model.encoder = tiny_encoder([[0.0, 0.0], [0.0, 0.0]], [0.5, math.log(0.25)])  # mu = 0.5, var = 0.25
    model.decoder = tiny_decoder([[2.0], [-1.0]], [0.0, 0.0])
    terms = model.loss(X_TINY)

    z = 0.5 + 0.5 * 2.0  # mu + std * eps
    logits = [2.0 * z, -1.0 * z]
    rec = (bernoulli_nll([0, 1], logits) + bernoulli_nll([1, 1], logits)) / 2
    kl = 0.5 * (0.5 ** 2 + 0.25 - 1 - math.log(0.25))
    assert terms["rec"].item() == pytest.approx(rec, rel=1e-6)
    assert terms["kl"].item() == pytest.approx(kl, rel=1e-6)
    assert terms["loss"].item() == pytest.approx(rec + 4.0 * kl, rel=1e-6)


def test_beta_vae_with_beta_one_is_exactly_the_vae():
    settings = {"latent_dim": 4, "arch": "mlp"}
    torch.manual_seed(3)
    vae = build_model("vae", (1, 8, 8), settings)
    torch.manual_seed(3)
    beta_vae = build_model("beta-vae", (1, 8, 8), settings | {"beta_norm": 4 / 64})  # raw beta 1
    for (name, a), (_, b) in zip(vae.state_dict().items(), beta_vae.state_dict().items()):
        assert torch.equal(a, b), name
    x = torch.rand(16, 1, 8, 8)
    torch.manual_seed(7)
    expected = vae.loss(x)
    torch.manual_seed(7)
    got = beta_vae.loss(x)
    assert set(got) == {"loss", "rec", "kl"}
    for name in expected:
        assert torch.equal(got[name], expected[name]), name


def test_beta_scales_only_the_kl_term():
    torch.manual_seed(0)
    model = build_model("beta-vae", (1, 8, 8), {"latent_dim": 4, "arch": "mlp", "beta_norm": 2.5 * 4 / 64})
    torch.manual_seed(1)
    terms = model.loss(torch.rand(8, 1, 8, 8))
    assert terms["loss"].item() == pytest.approx(terms["rec"].item() + 2.5 * terms["kl"].item(), rel=1e-6)


@pytest.mark.parametrize("beta", [0, -1, float("nan"), float("inf")])
def test_beta_must_be_positive_and_finite(beta):
    with pytest.raises(HyperparameterError, match="beta_norm"):
        build_model("beta-vae", (1, 8, 8), {"beta_norm": beta})


# --- the MMD estimator


def test_imq_kernel_is_the_sum_over_scales():
    sq = torch.tensor([0.0, 3.0])
    expected = [sum(1.0 for _ in AUTHORS_SCALES), sum(2 * s / (2 * s + 3.0) for s in AUTHORS_SCALES)]
    torch.testing.assert_close(imq_kernel(sq, 2.0), torch.tensor(expected))


def test_mmd_of_a_sample_with_itself_is_about_zero_and_grows_with_a_mean_shift():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(500, 4, generator=gen), torch.randn(500, 4, generator=gen)
    assert abs(imq_mmd(x, x).item()) < 0.03
    assert abs(imq_mmd(x, y).item()) < 0.03
    shifted = [imq_mmd(x, y + shift).item() for shift in (0.25, 0.5, 1.0, 2.0)]
    assert shifted == sorted(shifted) and shifted[0] > 0.03 and shifted[-1] > 1.0


def test_mmd_estimator_is_unbiased():
    """Mean over many small draws from one distribution is ~0; the biased (V-statistic) one is not."""
    gen = torch.Generator().manual_seed(1)
    n, draws = 8, 500
    unbiased, biased = [], []
    for _ in range(draws):
        x, y = torch.randn(n, 2, generator=gen), torch.randn(n, 2, generator=gen)
        unbiased.append(imq_mmd(x, y).item())
        k = lambda a, b: imq_kernel(torch.cdist(a, b) ** 2, 2.0 * 2)  # diagonal included: biased
        biased.append((k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()).item())
    unbiased, biased = torch.tensor(unbiased), torch.tensor(biased)
    standard_error = unbiased.std().item() / math.sqrt(draws)
    assert abs(unbiased.mean().item()) < 4 * standard_error
    assert biased.mean().item() > 20 * standard_error  # the test can tell an estimator with a bias


def test_mmd_needs_two_points_per_sample():
    with pytest.raises(ValueError, match="at least 2"):
        imq_mmd(torch.zeros(1, 3), torch.zeros(5, 3))


# --- WAE


def test_wae_loss_terms_by_hand(monkeypatch):
    model = build_model("wae", TINY_SHAPE, {"latent_dim": 1, "rec_scale": 0.05})  # lam: default 10
    model.encoder = tiny_encoder([[1.0, -1.0]], [0.5])  # z = x0 - x1 + 0.5 -> codes -0.5 and 0.5
    model.decoder = tiny_decoder([[2.0], [0.0]], [0.0, 1.0])  # logits (2z, 1)
    prior = torch.tensor([[0.0], [1.0]])
    monkeypatch.setattr(model, "prior_sample", lambda n, generator=None: prior)
    terms = model.loss(X_TINY)

    sse_1 = (sigmoid(-1.0) - 0) ** 2 + (sigmoid(1.0) - 1) ** 2
    sse_2 = (sigmoid(1.0) - 1) ** 2 + (sigmoid(1.0) - 1) ** 2
    rec = (sse_1 + sse_2) / 2
    codes, draws = [-0.5, 0.5], [0.0, 1.0]
    mmd = 0.0
    for scale in AUTHORS_SCALES:
        c = scale * 2 * 1 * 1.0  # 2 * latent_dim * sigma^2
        k = lambda a, b: c / (c + (a - b) ** 2)
        within = k(codes[0], codes[1]) + k(draws[0], draws[1])  # each off-diagonal pair twice / n(n-1) = 2
        cross = sum(k(a, b) for a in codes for b in draws) / 4
        mmd += within - 2 * cross
    assert set(terms) == {"loss", "rec", "mmd"}
    assert terms["rec"].item() == pytest.approx(rec, rel=1e-6)
    assert terms["mmd"].item() == pytest.approx(mmd, rel=1e-5, abs=1e-7)
    assert terms["loss"].item() == pytest.approx(0.05 * rec + 10.0 * mmd, rel=1e-5)


def test_wae_is_deterministic_and_samples_from_its_prior():
    torch.manual_seed(0)
    model = build_model("wae", (1, 8, 8), {"latent_dim": 3, "arch": "mlp", "prior_var": 4.0})
    x = torch.rand(5, 1, 8, 8)
    assert model.encode(x).shape == (5, 3)
    torch.testing.assert_close(model.encode(x), model.encode(x))
    z = 2.0 * torch.randn(6, 3, generator=torch.Generator().manual_seed(9))  # sigma_z = sqrt(4)
    torch.testing.assert_close(model.sample(6, torch.Generator().manual_seed(9)), model.decode(z))
    samples = model.sample(6)
    assert samples.shape == (6, 1, 8, 8) and samples.min() >= 0 and samples.max() <= 1


@pytest.mark.parametrize("overrides,field", [({"lam": -1}, "lam"), ({"prior_var": 0}, "prior_var"),
                                             ({"rec_scale": 0}, "rec_scale"), ({"lam": float("nan")}, "lam")])
def test_wae_bad_hyperparameters_name_the_field(overrides, field):
    with pytest.raises(HyperparameterError, match=field):
        build_model("wae", (1, 8, 8), overrides)


# --- VampPrior


def test_vampprior_loss_terms_by_hand(fixed_eps):
    model = build_model("vampprior", TINY_SHAPE, {"latent_dim": 1, "K": 2})
    model.encoder = tiny_encoder([[1.0, 1.0], [0.0, -1.0]], [-1.0, 0.0])  # mu = x0 + x1 - 1, logvar = -x1
    model.decoder = tiny_decoder([[1.0], [-1.0]], [0.0, 0.0])  # logits (z, -z)
    with torch.no_grad():
        model.pseudo_inputs.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.5]]).view(2, *TINY_SHAPE))
    terms = model.loss(X_TINY)

    components = [(-1.0, 1.0), (0.5, math.exp(-0.5))]  # (mean, variance) of q(z|u_1), q(z|u_2)
    rec, kl = 0.0, 0.0
    for pixels, mu in (([0, 1], 0.0), ([1, 1], 1.0)):  # both images have logvar = -1
        var = math.exp(-1.0)
        z = mu + math.sqrt(var) * 2.0
        log_q = math.log(normal_pdf(z, mu, var))
        log_p = math.log(sum(normal_pdf(z, m, v) for m, v in components) / 2)
        kl += (log_q - log_p) / 2
        rec += bernoulli_nll(pixels, [z, -z]) / 2
    assert set(terms) == {"loss", "rec", "kl"}
    assert terms["rec"].item() == pytest.approx(rec, rel=1e-6)
    assert terms["kl"].item() == pytest.approx(kl, rel=1e-5)
    assert terms["loss"].item() == pytest.approx(rec + kl, rel=1e-6)


def test_vampprior_log_prior_is_the_mixture_of_posteriors_at_the_pseudo_inputs():
    torch.manual_seed(0)
    model = build_model("vampprior", (1, 8, 8), {"latent_dim": 3, "arch": "mlp", "K": 5})
    with torch.no_grad():
        model.pseudo_inputs.copy_(torch.rand(5, 1, 8, 8))
    z = torch.cat([torch.randn(10, 3), torch.full((1, 3), 40.0)])  # the last one far out in the tail
    mu, logvar = model.posterior(model.pseudo_inputs)
    mixture = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=torch.zeros(5)),
        torch.distributions.Independent(torch.distributions.Normal(mu, (0.5 * logvar).exp()), 1))
    got = model.log_prior(z)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, mixture.log_prob(z), rtol=1e-5, atol=1e-4)
    per_component = torch.stack([log_normal_diag(z, mu[k], logvar[k]) for k in range(5)], dim=1)
    torch.testing.assert_close(got, torch.logsumexp(per_component, dim=1) - math.log(5))


def test_log_normal_diag_matches_torch_distributions():
    z, mu, logvar = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    expected = torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1)
    torch.testing.assert_close(log_normal_diag(z, mu, logvar), expected)


def test_log_normal_diag_pairs_equals_the_broadcast_density_in_value_and_gradient():
    # Small variances (logvar down to -12) are where the expanded square cancels large terms.
    torch.manual_seed(0)
    z = (3 * torch.randn(7, 4)).requires_grad_()
    mu = (3 * torch.randn(5, 4)).requires_grad_()
    logvar = (torch.rand(5, 4) * 14 - 12).requires_grad_()
    pairs = log_normal_diag_pairs(z, mu, logvar)
    broadcast = log_normal_diag(z.double().unsqueeze(1), mu.double().unsqueeze(0), logvar.double().unsqueeze(0))
    assert pairs.shape == (7, 5)
    torch.testing.assert_close(pairs, broadcast, rtol=1e-12, atol=1e-9)
    grads = torch.autograd.grad(pairs.logsumexp(1).sum(), (z, mu, logvar))
    expected = torch.autograd.grad(broadcast.logsumexp(1).sum(), (z, mu, logvar))
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_vampprior_pseudo_inputs_start_at_distinct_training_images_and_stay_in_unit_range(digits):
    model = build_model("vampprior", digits.image_shape, {"K": 50, "init_noise": 0.0, "arch": "mlp"})
    model.prepare(digits.train_x, torch.Generator().manual_seed(0))
    flat_train, flat_u = digits.train_x.flatten(1), model.pseudo_inputs.detach().flatten(1)
    nearest = torch.cdist(flat_u, flat_train).min(dim=1)
    assert nearest.values.max().item() < 1e-5  # each one is a training image
    assert len(set(nearest.indices.tolist())) == 50  # ... and no image twice

    noisy = build_model("vampprior", digits.image_shape, {"K": 50, "init_noise": 0.01, "arch": "mlp"})
    noisy.prepare(digits.train_x, torch.Generator().manual_seed(0))
    difference = noisy.pseudo_inputs.detach() - model.pseudo_inputs.detach()  # same images, plus noise
    assert 0 < difference.abs().max().item() < 0.1
    with torch.no_grad():
        noisy.pseudo_inputs.add_(torch.linspace(-2, 2, noisy.pseudo_inputs.numel()).view_as(noisy.pseudo_inputs))
    noisy.after_step()
    assert noisy.pseudo_inputs.min().item() >= 0.0 and noisy.pseudo_inputs.max().item() <= 1.0


def test_vampprior_with_more_pseudo_inputs_than_training_images_is_a_hyperparameter_error(digits):
    model = build_model("vampprior", digits.image_shape, {"K": len(digits.train_x) + 1, "arch": "mlp"})
    with pytest.raises(HyperparameterError, match=rf"K = {len(digits.train_x) + 1}.*{len(digits.train_x)}"):
        model.prepare(digits.train_x, torch.Generator().manual_seed(0))
    with pytest.raises(HyperparameterError, match="K"):
        build_model("vampprior", (1, 8, 8), {"K": 0})


def test_vampprior_samples_come_from_the_pseudo_input_posteriors():
    torch.manual_seed(0)
    model = build_model("vampprior", (1, 8, 8), {"latent_dim": 2, "arch": "mlp", "K": 3})
    with torch.no_grad():
        model.pseudo_inputs.copy_(torch.rand(3, 1, 8, 8))
    gen = torch.Generator().manual_seed(4)
    components = torch.randint(3, (6,), generator=gen)
    mu, logvar = model.posterior(model.pseudo_inputs[components])
    z = mu + (0.5 * logvar).exp() * torch.randn(6, 2, generator=gen)
    torch.testing.assert_close(model.sample(6, torch.Generator().manual_seed(4)), model.decode(z))


def test_smoke_profile_gives_vampprior_a_k_that_fits_digits(digits):
    spec = plan(get_profile("smoke"), ["vampprior"], ["digits"], [0])[0]
    assert spec.hparams["K"] <= len(digits.train_x)


# --- each model trains on digits through the shared loop and protocol


@pytest.fixture
def one_thread():
    """These nets are tiny: on a shared 2-core machine one thread trained 10 times faster than two
    (5 s against 53 s for WAE, measured while other jobs ran), since two threads wait on each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", ["beta-vae", "wae", "vampprior"])
def test_model_trains_on_digits_in_the_smoke_profile(digits, name, one_thread):
    spec = plan(get_profile("smoke"), [name], ["digits"], [0], epochs=10)[0]  # fewer epochs: seconds per model
    torch.manual_seed(0)
    model = build_model(name, digits.image_shape, spec.hparams)
    model.prepare(digits.train_x, torch.Generator().manual_seed(0))
    before = {row["metric"]: row["value"] for row in evaluate(model, digits, spec.eval)}

    result = fit(model, digits, spec.train, seed=0, progress=False)
    assert result.status == "ok", result.reason
    after = {row["metric"]: row["value"] for row in evaluate(model, digits, spec.eval)}
    chance = 1.0 / digits.num_classes
    assert after["knn5_acc"] > chance + 0.3
    # kNN on digits is high even for a random encoder, so also ask that training did its job
    assert after["recon_sse"] < 0.6 * before["recon_sse"]
    terms = set(model.loss(digits.val_x[:10]))
    logged = set(result.history[0])
    assert {f"train_{t}" for t in terms} <= logged and {f"val_{t}" for t in terms} <= logged
    assert all(math.isfinite(row[f"val_{t}"]) for row in result.history for t in terms)
    samples = model.sample(16, torch.Generator().manual_seed(0))
    assert samples.shape == (16, *digits.image_shape) and torch.isfinite(samples).all()
