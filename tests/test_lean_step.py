"""The faster training step computes what the plain one did: the Bernoulli likelihood, the fused
optimisers and the channels-last gated networks, each against the straightforward form."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aebench.catalog.models import build_model
from aebench.run.optim import AdamNormGrad, fused_supported, make_optimizer
from models.likelihoods import bernoulli_nll


def test_bernoulli_nll_equals_the_library_value_and_gradient_including_extreme_logits():
    torch.manual_seed(0)
    logits = torch.cat([8 * torch.randn(500), torch.tensor([-200.0, -30.0, -17.0, 0.0, 17.0, 30.0, 200.0])])
    target = torch.cat([torch.rand(500), torch.tensor([0.0, 1.0, 0.5, 1.0, 0.0, 1.0, 1.0])])
    for_library, for_suite = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    expected = F.binary_cross_entropy_with_logits(for_library, target, reduction="none")
    value = bernoulli_nll(for_suite, target)
    torch.testing.assert_close(value, expected, atol=1e-6, rtol=1e-6)  # float32 rounding of sums up to 200
    weights = torch.rand(len(logits))  # a non-uniform upstream gradient
    (expected * weights).sum().backward()
    (value * weights).sum().backward()
    torch.testing.assert_close(for_suite.grad, for_library.grad, atol=1e-7, rtol=1e-6)


def test_bernoulli_nll_does_not_change_its_inputs():
    logits, target = torch.randn(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    before = logits.clone(), target.clone()
    bernoulli_nll(logits, target)
    assert torch.equal(logits, before[0]) and torch.equal(target, before[1])


def _train_copies(optimizer_factory, reference_factory, steps=5):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    twin = copy.deepcopy(net)
    opt, ref = optimizer_factory(list(net.parameters())), reference_factory(list(twin.parameters()))
    for step in range(steps):
        x = torch.randn(10, 6, generator=torch.Generator().manual_seed(step))
        for model, optimizer in ((net, opt), (twin, ref)):
            optimizer.zero_grad()
            model(x).square().mean().backward()
            optimizer.step()
    return net, twin


@pytest.mark.parametrize("name", ["adam", "adam-normgrad"])
def test_fused_optimisers_give_the_per_parameter_updates(name):
    class PerParameterNormGrad(torch.optim.Adam):  # the paper's rule written the plain way
        @torch.no_grad()
        def step(self):
            for group in self.param_groups:
                for p in group["params"]:
                    p.grad.div_(p.grad.norm() + AdamNormGrad.EPS)
            return super().step()

    reference = torch.optim.Adam if name == "adam" else PerParameterNormGrad
    torch.manual_seed(0)
    start = [p.clone() for p in nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).parameters()]
    net, twin = _train_copies(lambda params: make_optimizer(name, params, 1e-2),
                              lambda params: reference(params, lr=1e-2, foreach=False))
    assert make_optimizer(name, list(net.parameters()), 1e-2).defaults["fused"] is True
    for mine, plain, initial in zip(net.parameters(), twin.parameters(), start):
        assert (mine - initial).abs().max() > 1e-3  # five real updates happened
        torch.testing.assert_close(mine, plain, atol=1e-6, rtol=1e-5)


def test_fused_kernel_is_asked_for_only_where_it_exists():
    assert fused_supported([torch.zeros(2, requires_grad=True)])
    assert not fused_supported([torch.zeros(2, dtype=torch.int64)])
    assert not fused_supported([torch.zeros(2, device="meta", requires_grad=True)])
    assert not fused_supported([])


@pytest.mark.parametrize("name", ["swae", "vae"])
def test_gated_networks_compute_the_same_step_in_channels_last_as_in_the_plain_layout(name):
    """The paper step (gated networks, latent 40) on a small batch: loss terms and every gradient match."""
    torch.manual_seed(0)
    model = build_model(name, (1, 28, 28), {"arch": "gated", "latent_dim": 40, "K": 8} if name == "swae"
                        else {"arch": "gated", "latent_dim": 40})
    conv_weight = next(p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1)
    assert conv_weight.is_contiguous(memory_format=torch.channels_last) and not conv_weight.is_contiguous()
    plain = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    assert next(p for p in plain.parameters() if p.dim() == 4 and p.shape[1] > 1).is_contiguous()
    x = torch.bernoulli(torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1)))
    results = []
    for net in (model, plain):
        torch.manual_seed(3)  # the same noise draws on both sides
        terms = net.loss(x)
        terms["loss"].backward()
        results.append(({k: v.item() for k, v in terms.items()}, [p.grad.clone() for p in net.parameters()]))
    (terms_cl, grads_cl), (terms_plain, grads_plain) = results
    assert terms_cl == pytest.approx(terms_plain, rel=1e-5)
    for g_cl, g_plain in zip(grads_cl, grads_plain):
        torch.testing.assert_close(g_cl, g_plain, atol=1e-4, rtol=1e-3)
