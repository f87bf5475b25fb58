"""SWAE (models/swae.py): loss terms by hand, pairing, gradients, the [0, 1] domain of the pseudo-inputs,
objective ablations, sampling, validation, a smoke run on digits, and the paper-profile pieces it uses."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from aebench.catalog.models import build_model
from aebench.data.splits import DataSplits
from aebench.run.evaluation import evaluate
from aebench.run.optim import AdamNormGrad
from aebench.run.profiles import get_profile, model_settings
from aebench.run.runner import plan
from aebench.run.training import TrainConfig, fit
from models.contract import HyperparameterError
from models.networks import GatedConv2d, Reshape, build_decoder, build_encoder
from models.swae import SWAE, SWAEConfig, nearest_pseudo_inputs


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def linear(in_features: int, out_features: int, weight, bias) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))
    return layer


# Tiny SWAE on 1x1x2 "images", latent 1, two pseudo-inputs, every weight fixed:
#   E(x) = 0.5 x1 - x2 + 0.2;  G(z) = sigmoid(2 z + 0.1), sigmoid(-z + 0.3)
#   P(u) = (mu = u1 + 0.5 u2, logvar = LOGVAR)
PSEUDO = [[0.1, 0.9], [0.8, 0.2]]
BATCH = [[0.0, 1.0], [1.0, 0.0]]  # nearest pseudo-inputs: 0, then 1
EPS = [0.4, -1.2]
LOGVAR = math.log(0.25)  # sigma = 0.5


def tiny_swae(logvar_bias: float = LOGVAR, **config) -> SWAE:
    model = SWAE((1, 1, 2), SWAEConfig(latent_dim=1, K=2, arch="mlp", **config))
    model.encoder = nn.Sequential(nn.Flatten(), linear(2, 1, [[0.5, -1.0]], [0.2]))
    model.decoder = nn.Sequential(linear(1, 2, [[2.0], [-1.0]], [0.1, 0.3]), Reshape(1, 1, 2))
    model.prior_net = nn.Sequential(nn.Flatten(), linear(2, 2, [[1.0, 0.5], [0.0, 0.0]], [0.0, logvar_bias]))
    model.pseudo_inputs = nn.Parameter(torch.tensor(PSEUDO).view(2, 1, 1, 2))
    model.noise = lambda shape, generator=None: torch.tensor(EPS).view(shape)  # fixed reparameterisation noise
    return model


def hand_terms(sigma: float = 0.5) -> dict[str, float]:
    """The three terms of the tiny model, computed with scalar arithmetic."""
    mu = [PSEUDO[0][0] + 0.5 * PSEUDO[0][1], PSEUDO[1][0] + 0.5 * PSEUDO[1][1]]  # 0.55, 0.9
    z_d = [mu[0] + sigma * EPS[0], mu[1] + sigma * EPS[1]]
    z_e = [0.5 * x[0] - x[1] + 0.2 for x in BATCH]  # -0.8, 0.7

    def sse_of_decoding(z, x):
        return (sigmoid(2 * z + 0.1) - x[0]) ** 2 + (sigmoid(-z + 0.3) - x[1]) ** 2

    return {
        "x": (sse_of_decoding(z_d[0], BATCH[0]) + sse_of_decoding(z_d[1], BATCH[1])) / 2,
        "z": ((z_e[0] - z_d[0]) ** 2 + (z_e[1] - z_d[1]) ** 2) / 2,
        "rec": (sse_of_decoding(z_e[0], BATCH[0]) + sse_of_decoding(z_e[1], BATCH[1])) / 2,
    }


def tiny_batch() -> torch.Tensor:
    return torch.tensor(BATCH).view(2, 1, 1, 2)


def small_splits(digits, n_train=200, n_eval=60) -> DataSplits:
    return DataSplits("digits-small", digits.train_x[:n_train], digits.train_y[:n_train], digits.val_x[:n_eval],
                      digits.val_y[:n_eval], digits.test_x[:n_eval], digits.test_y[:n_eval])


# ---------------------------------------------------------------- loss terms


def test_every_loss_term_equals_the_hand_computed_value():
    terms = tiny_swae().loss(tiny_batch())
    expected = hand_terms()
    for name in ("x", "z", "rec"):
        assert terms[name].item() == pytest.approx(expected[name], rel=1e-6), name
    assert terms["loss"].item() == pytest.approx(0.5 * expected["x"] + 0.5 * expected["rec"] + expected["z"], rel=1e-6)


def test_prior_log_variance_is_clamped_to_its_range():
    # logvar bias 5 > logvar_max 2: the component's sigma must be exp(2 / 2) = e, not exp(5 / 2)
    terms = tiny_swae(logvar_bias=5.0).loss(tiny_batch())
    assert terms["z"].item() == pytest.approx(hand_terms(sigma=math.e)["z"], rel=1e-6)
    _, logvar = tiny_swae(logvar_bias=-50.0).prior_params(tiny_swae().pseudo_inputs)
    assert torch.all(logvar == -6.0)


@pytest.mark.parametrize("objective, weights", [
    ("xzrec", {"x": 0.3, "rec": 0.7, "z": 2.0}),
    ("xz", {"x": 0.3, "z": 2.0}),
    ("zrec", {"rec": 0.3, "z": 2.0}),
])
def test_each_objective_keeps_exactly_its_terms(objective, weights):
    terms = tiny_swae(objective=objective, beta=0.3, lam=2.0).loss(tiny_batch())
    expected = hand_terms()
    assert terms["loss"].item() == pytest.approx(sum(w * expected[t] for t, w in weights.items()), rel=1e-6)
    for name in ("x", "z", "rec"):  # every term is reported, but a dropped one carries no gradient
        assert terms[name].item() == pytest.approx(expected[name], rel=1e-6)
        assert terms[name].requires_grad == (name in weights), name


def test_a_dropped_term_sends_no_gradient_to_the_decoder():
    # In zrec, the decoder sees only rec; its gradient must equal that of beta * rec alone.
    model = tiny_swae(objective="zrec", beta=0.3)
    model.loss(tiny_batch())["loss"].backward()
    from_loss = model.decoder[0].weight.grad.clone()
    model.zero_grad()
    (0.3 * model.loss(tiny_batch())["rec"]).backward()
    assert torch.allclose(from_loss, model.decoder[0].weight.grad)


# ---------------------------------------------------------------- pairing


def test_pairing_picks_the_nearest_pseudo_input(digits):
    pseudo = digits.train_x[:20]
    x = digits.train_x[100:140]
    brute_force = [min(range(20), key=lambda k: torch.dist(x[i], pseudo[k]).item()) for i in range(len(x))]
    assert nearest_pseudo_inputs(x, pseudo).tolist() == brute_force
    assert nearest_pseudo_inputs(pseudo[[7, 3]] + 0.001, pseudo).tolist() == [7, 3]


def test_cosine_pairing_follows_direction_not_distance():
    pseudo = torch.tensor([[0.1, 0.0], [0.5, 0.5]]).view(2, 1, 1, 2)
    x = torch.tensor([[0.9, 0.0]]).view(1, 1, 1, 2)  # closer to [0.5, 0.5], same direction as [0.1, 0]
    assert nearest_pseudo_inputs(x, pseudo, "euclidean").tolist() == [1]
    assert nearest_pseudo_inputs(x, pseudo, "cosine").tolist() == [0]


def test_loss_uses_the_configured_pairing():
    # Pseudo-inputs where image 1 is nearer to u_0 but points the way of u_1: the two pairings
    # disagree for it, so the latent term must differ between them.
    euclid, cosine = tiny_swae(), tiny_swae(pairing="cosine")
    for model in (euclid, cosine):
        model.pseudo_inputs = nn.Parameter(torch.tensor([[0.5, 0.5], [0.1, 0.0]]).view(2, 1, 1, 2))
    x = torch.tensor([[0.0, 1.0], [0.9, 0.0]]).view(2, 1, 1, 2)
    assert nearest_pseudo_inputs(x, euclid.pseudo_inputs, "euclidean").tolist() == [0, 0]
    assert nearest_pseudo_inputs(x, euclid.pseudo_inputs, "cosine").tolist() == [0, 1]
    assert euclid.loss(x)["z"].item() != pytest.approx(cosine.loss(x)["z"].item())


# ---------------------------------------------------------------- gradients and the [0, 1] domain


@pytest.mark.parametrize("pairing", ["euclidean", "cosine"])
def test_gradients_reach_every_part_and_only_the_paired_pseudo_inputs(digits, pairing):
    torch.manual_seed(0)
    model = SWAE(digits.image_shape, SWAEConfig(latent_dim=4, K=30, arch="mlp", pairing=pairing))
    model.prepare(digits.train_x, torch.Generator().manual_seed(0))
    x = digits.train_x[:16]
    model.loss(x)["loss"].backward()
    for part in (model.encoder, model.decoder, model.prior_net):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    paired = set(nearest_pseudo_inputs(x, model.pseudo_inputs, pairing).tolist())
    has_grad = {k for k in range(30) if model.pseudo_inputs.grad[k].abs().sum() > 0}
    assert has_grad == paired and len(paired) < 30


def test_pseudo_inputs_stay_in_unit_interval_after_optimiser_steps(digits):
    data = small_splits(digits)
    config = TrainConfig(epochs=1, batch_size=50, lr=0.5, patience=1)  # huge steps push pixels out of [0, 1]

    def trained_pseudo_inputs(keep_in_domain: bool) -> torch.Tensor:
        torch.manual_seed(0)
        model = SWAE(data.image_shape, SWAEConfig(latent_dim=4, K=40, arch="mlp"))
        if not keep_in_domain:
            model.after_step = lambda: None
        assert fit(model, data, config, seed=0, progress=False).status == "ok"
        return model.pseudo_inputs.detach()

    unprojected = trained_pseudo_inputs(keep_in_domain=False)
    assert unprojected.min() < 0 or unprojected.max() > 1  # the steps alone do leave the domain
    kept = trained_pseudo_inputs(keep_in_domain=True)
    assert kept.min() >= 0 and kept.max() <= 1


def test_prepare_starts_from_distinct_training_images_plus_small_noise(digits):
    model = SWAE(digits.image_shape, SWAEConfig(latent_dim=4, K=50, arch="mlp"))
    model.prepare(digits.train_x, torch.Generator().manual_seed(3))
    u = model.pseudo_inputs.detach()
    nearest = torch.cdist(u.flatten(1), digits.train_x.flatten(1)).min(dim=1)
    assert nearest.values.max() < 0.01 * 8 * 4  # within a few noise stds of a training image (64 pixels)
    assert len(set(nearest.indices.tolist())) == 50  # K distinct images
    assert u.min() >= 0 and u.max() <= 1
    again = SWAE(digits.image_shape, SWAEConfig(latent_dim=4, K=50, arch="mlp"))
    again.prepare(digits.train_x, torch.Generator().manual_seed(3))
    assert torch.equal(again.pseudo_inputs, model.pseudo_inputs)  # seeded by the generator it receives


# ---------------------------------------------------------------- sampling and the contract


def test_sample_shape_range_and_seeding(digits):
    torch.manual_seed(0)
    model = SWAE(digits.image_shape, SWAEConfig(latent_dim=4, K=20, arch="mlp"))
    model.prepare(digits.train_x, torch.Generator().manual_seed(0))
    with torch.no_grad():
        images = model.sample(12, torch.Generator().manual_seed(5))
        assert images.shape == (12, *digits.image_shape)
        assert images.min() >= 0 and images.max() <= 1
        assert torch.equal(images, model.sample(12, torch.Generator().manual_seed(5)))
        assert not torch.equal(images, model.sample(12, torch.Generator().manual_seed(6)))


def test_sample_draws_mixture_components_uniformly():
    model, drawn = tiny_swae(), []
    model.pseudo_inputs = nn.Parameter(torch.rand(4, 1, 1, 2))
    model.config.K = 4
    model.noise = lambda shape, generator=None: torch.zeros(shape)
    original = model.draw_prior
    model.draw_prior = lambda components, generator=None: drawn.append(components) or original(components, generator)
    model.sample(4000, torch.Generator().manual_seed(0))
    counts = torch.bincount(drawn[0], minlength=4)
    assert counts.min() > 850 and counts.max() < 1150


def test_encode_is_deterministic_and_decode_in_unit_interval(digits):
    model = SWAE(digits.image_shape, SWAEConfig(latent_dim=4, K=10, arch="mlp"))
    x = digits.test_x[:8]
    assert torch.equal(model.encode(x), model.encode(x))
    assert torch.equal(model.encode(x), model.encoder(x))
    out = model.reconstruct(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1


def test_checkpoint_round_trip_keeps_the_prior(digits):
    model = build_model("swae", digits.image_shape, {"latent_dim": 4, "K": 10, "arch": "mlp"})
    model.prepare(digits.train_x, torch.Generator().manual_seed(0))
    again = build_model("swae", digits.image_shape, {"latent_dim": 4, "K": 10, "arch": "mlp"})
    again.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(model.sample(5, torch.Generator().manual_seed(1)),
                           again.sample(5, torch.Generator().manual_seed(1)))


# ---------------------------------------------------------------- clear errors


def test_k_larger_than_the_training_set_is_a_clear_error(digits):
    model = SWAE(digits.image_shape, SWAEConfig(latent_dim=4, K=5000, arch="mlp"))
    with pytest.raises(HyperparameterError, match=r"K = 5000.*number of training images \(1257\)"):
        model.prepare(digits.train_x, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("overrides, message", [
    ({"beta": -0.1}, r"beta = -0.1: must be in \[0, 1\]"),
    ({"beta": "1.5"}, r"beta = 1.5: must be in \[0, 1\]"),
    ({"lam": -1.0}, r"lam = -1.0: must be a finite number >= 0"),
    ({"K": 0}, r"K = 0: must be an integer >= 1"),
    ({"objective": "xx"}, r"objective = 'xx': must be one of xzrec, xz, zrec"),
    ({"pairing": "latent"}, r"pairing = 'latent': must be one of euclidean, cosine"),
    ({"logvar_max": -7.0}, r"logvar_max = -7.0: must be finite and > logvar_min"),
    ({"lambda": 1.0}, r"no hyperparameter lambda; choices: .*lam"),
])
def test_bad_hyperparameters_are_clear_errors(overrides, message):
    with pytest.raises(HyperparameterError, match=message):
        build_model("swae", (1, 8, 8), overrides)


# ---------------------------------------------------------------- paper-profile pieces


def test_paper_profile_gives_swae_its_settings():
    profile = get_profile("paper")
    assert model_settings(profile, SWAE) == {"latent_dim": 40, "arch": "gated", "K": 4000}
    assert (profile.train.lr, profile.train.batch_size, profile.train.epochs, profile.train.patience,
            profile.train.optimizer, profile.binarize) == (5e-4, 100, 200, 50, "adam-normgrad", True)


def test_gated_networks_have_the_paper_shapes():
    x = torch.rand(3, 1, 28, 28)
    encoder, decoder = build_encoder("gated", (1, 28, 28), 40), build_decoder("gated", 40, (1, 28, 28))
    assert [(m.h.in_channels, m.h.out_channels, m.h.kernel_size[0], m.h.stride[0]) for m in encoder
            if isinstance(m, GatedConv2d)] == [(1, 32, 7, 1), (32, 32, 3, 2), (32, 64, 5, 1), (64, 64, 3, 2), (64, 6, 3, 1)]
    assert encoder(x).shape == (3, 40) and decoder(torch.randn(3, 40)).shape == (3, 1, 28, 28)


def test_swae_with_gated_nets_clamps_grey_outputs_like_the_paper():
    model = SWAE((1, 28, 28), SWAEConfig(latent_dim=40, K=4, arch="gated"))
    model.prepare(torch.rand(10, 1, 28, 28), torch.Generator().manual_seed(0))
    out = model.decode(torch.randn(3, 40) * 100)  # saturating logits
    assert out.min() >= 1 / 512 and out.max() <= 1 - 1 / 512
    assert torch.isfinite(model.loss(torch.rand(3, 1, 28, 28))["loss"])


def test_adam_normgrad_is_adam_on_per_parameter_unit_gradients():
    grads = [torch.tensor([3.0, 4.0]), torch.tensor([0.1, -0.2])]  # norms 5 and ~0.22: Adam alone would differ
    normed, plain = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    opt_normed, opt_plain = AdamNormGrad([normed], lr=0.1), torch.optim.Adam([plain], lr=0.1)
    for g in grads:
        normed.grad, plain.grad = g.clone(), g / g.norm()
        opt_normed.step(), opt_plain.step()
    assert torch.allclose(normed, plain, atol=1e-6)
    assert normed.grad.norm().item() == pytest.approx(1.0, rel=1e-5)


# ---------------------------------------------------------------- end to end


def test_smoke_run_on_digits_beats_chance_by_far(digits):
    spec, = plan(get_profile("smoke"), ["swae"], ["digits"], [0], epochs=10)
    assert spec.hparams["K"] == 100 and spec.hparams["arch"] == "mlp"
    torch.manual_seed(0)
    model = build_model("swae", digits.image_shape, spec.hparams)
    result = fit(model, digits, spec.train, seed=0, progress=False)
    assert result.status == "ok", result.reason
    scores = {row["metric"]: row["value"] for row in evaluate(model, digits, spec.eval)}
    assert scores["knn5_acc"] > 0.7  # chance is 0.1
    assert {"train_x", "train_z", "train_rec", "val_loss"} <= set(result.history[0])


def test_the_objective_ablation_has_names_of_its_own_outside_the_default_grid():
    from aebench.catalog.models import ABLATIONS, MODELS
    from aebench.run.profiles import get_profile
    from aebench.run.runner import plan

    assert set(MODELS) == {"swae", "vae", "beta-vae", "wae", "vampprior"}  # `run` without --models
    specs = plan(get_profile("smoke"), ["swae", "swae-xz", "swae-zrec"], ["digits"], [0],
                 overrides={"swae-xz": {"lam": 0.3}})
    objectives = {s.model: s.hparams["objective"] for s in specs}
    assert objectives == {"swae": "xzrec", "swae-xz": "xz", "swae-zrec": "zrec"}
    assert {s.model: s.hparams["K"] for s in specs} == {"swae": 100, "swae-xz": 100, "swae-zrec": 100}  # SWAE's profile K
    assert [s.hparams["lam"] for s in specs] == [1.0, 0.3, 1.0]
    torch.manual_seed(0)
    xz = ABLATIONS["swae-xz"]((1, 8, 8), ABLATIONS["swae-xz"].Config(arch="mlp", K=4))
    xz.prepare(torch.rand(20, 1, 8, 8), torch.Generator().manual_seed(0))
    terms = xz.loss(torch.rand(5, 1, 8, 8))
    assert not terms["rec"].requires_grad and terms["x"].requires_grad  # rec reported, not trained
    torch.testing.assert_close(terms["loss"], xz.config.beta * terms["x"] + xz.config.lam * terms["z"])
