import pytest
import torch

from benchmark.errors import UserError
from models.networks import ARCHITECTURES, build_decoder, build_encoder, resolve_arch


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


def test_gated_encoder_follows_the_paper_layout():
    enc = build_encoder("gated", (1, 28, 28), 40)
    convs = [m for m in enc if type(m).__name__ == "GatedConv2d"]
    assert [(c.h.in_channels, c.h.out_channels, c.h.kernel_size[0], c.h.stride[0]) for c in convs] == [
        (1, 32, 7, 1), (32, 32, 3, 2), (32, 64, 5, 1), (64, 64, 3, 2), (64, 6, 3, 1)]
    assert enc[-1].in_features == 6 * 7 * 7
    assert set(ARCHITECTURES) == {"mlp", "conv", "gated"}
