import pytest
import torch

from aebench.errors import UserError
from models.networks import build_decoder, build_encoder, resolve_arch


@pytest.mark.parametrize("arch,shape", [("mlp", (1, 8, 8)), ("conv", (1, 28, 28)), ("conv", (3, 32, 32)),
                                        ("gated", (1, 28, 28)), ("mlp", (1, 28, 28))])
def test_encoder_and_decoder_shapes(arch, shape):
    enc, dec = build_encoder(arch, shape, 10), build_decoder(arch, 5, shape)
    assert enc(torch.rand(3, *shape)).shape == (3, 10)
    assert dec(torch.randn(3, 5)).shape == (3, *shape)


def test_auto_picks_mlp_for_small_and_conv_for_large_images():
    assert resolve_arch("auto", (1, 8, 8)) == "mlp"
    assert resolve_arch("auto", (1, 28, 28)) == "conv"
    assert resolve_arch("gated", (1, 8, 8)) == "gated"


def test_conv_rejects_shapes_it_cannot_halve_twice():
    with pytest.raises(UserError, match="divisible by 4"):
        build_encoder("conv", (1, 30, 30), 4)


def test_gated_decoder_bounds_grey_outputs_like_the_paper():
    decoder = build_decoder("gated", 4, (1, 28, 28))
    with torch.no_grad():
        probabilities = torch.sigmoid(decoder(torch.randn(3, 4) * 1000))
    assert probabilities.min() >= 1 / 512 - 1e-7 and probabilities.max() <= 1 - 1 / 512 + 1e-7
    colour = build_decoder("gated", 4, (3, 32, 32))
    assert not any(type(layer).__name__ == "ClampLogits" for layer in colour)  # colour outputs are not clamped


def test_every_body_hands_float32_back_under_bf16_autocast():
    # What makes every model's objective float32 under --precision bf16 (aebench.plumbing.precision).
    for arch, shape in (("mlp", (1, 8, 8)), ("conv", (1, 28, 28)), ("gated", (1, 28, 28))):
        encoder, decoder = build_encoder(arch, shape, 6), build_decoder(arch, 3, shape)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            codes, logits = encoder(torch.rand(2, *shape)), decoder(torch.randn(2, 3))
            inner = encoder[:-1](torch.rand(2, *shape))  # the same body without its last step
        assert codes.dtype == logits.dtype == torch.float32 and inner.dtype == torch.bfloat16, arch
