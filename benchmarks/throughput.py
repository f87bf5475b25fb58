"""Training throughput of the suite's loop against pythae's, on identical networks, data and optimiser.

    python benchmarks/throughput.py [--network mlp|conv|both] [--repeats 5] [--epochs 2] [--threads 1]
                                    [--precision fp32[,bf16]]

pythae is optional (`pip install -e ".[bench]"`); without it the suite alone is measured.

Both sides train the same VAE: same layers, the same initial weights (copied from one to the other),
the same grey mnist-5k training images (3500, not binarised), batch 100, Adam (lr 1e-3, betas 0.9 and
0.999), Bernoulli likelihood, latent 16, on the CPU with --threads torch threads (default 1).

- mlp:  pythae's default MLP VAE for 28x28 (its Encoder_VAE_MLP and Decoder_AE_MLP: 784-512, heads
        512-16 for the mean and 512-16 for the log-variance; 16-512-784). The suite side is the suite's
        VAE class (its loss) on the same layers built here, with pythae's initial weights copied in.
- conv: the suite's own conv VAE (models/networks.py, arch "conv"); pythae gets copies of its encoder
        and decoder wrapped as a pythae BaseEncoder / BaseDecoder.

What is timed, per epoch, and summed over the --epochs epochs of a run:
- suite:  each call of aebench.run.training._train_epoch inside aebench.run.training.fit (the real loop):
          shuffling, batch gathering, loss, the finiteness check, backward, Adam, the loss totals.
          Not timed: fit's validation pass and its copy of the best weights after each epoch.
- pythae: each call of BaseTrainer.train_step (its real loop): the DataLoader (per-image indexing and
          collation), forward, loss, backward, Adam, loss.item(), its progress-bar callback. Not timed:
          the trainer's set-up and sanity-check forward, its copy of the best model after each epoch
          and the final save to a temporary folder. No evaluation set is given, so none runs.
Runs alternate (suite, pythae, suite, ...) so that a change in the machine's load hits both sides.
Both models are checked to compute the same loss on one batch with the same noise before timing.

--precision fp32,bf16: the suite trains in each precision (TrainConfig.precision, so its epochs run the
forward and loss under torch.autocast, bfloat16, as `aebench run --precision bf16` does), the runs
alternating (suite fp32, suite bf16, pythae fp32, suite fp32, ...). pythae has no bf16: it is timed in
fp32 only, and only when fp32 is among the precisions, and suite/pythae compares the two in fp32. The
bf16 speed-up compares the suite with itself: its fp32 median time over its bf16 median time. bf16 is
refused (one line on stderr, exit code 2) on a CPU without native bfloat16. The default, fp32 alone,
measures what the script always measured.

Reading the output: images/s per run, the median per side, and suite/pythae (above 1: the suite is
faster). "Kernels" are the matrix products (and, for conv, convolutions) of one training step,
recorded from a real step and replayed alone at the same shapes and memory layouts: their rate is
what this machine's math libraries reach on this step's work, and "% of the kernels' rate" is how
much of it a whole training step keeps (the rest goes to elementwise work, the optimiser and Python).
With several precisions every row is labelled with its precision ("suite bf16"), the kernels are
recorded and replayed once per precision (bf16's are the bfloat16 products autocast runs), and a
line "bf16 speed-up" gives the suite's fp32 time over its bf16 time (above 1: bf16 is faster).
The line "CPU:" names the CPU (its model name, and which of avx512_bf16 / amx_bf16 it has: AMX is what
makes bf16 fast on Intel CPUs), so that every figure says where it comes from. On a busy machine every
number moves with the load, which is printed.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import logging
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from unittest import mock

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aebench.data.datasets import load_dataset  # noqa: E402
from aebench.errors import UserError  # noqa: E402
from aebench.plumbing.precision import check_precision, cpu_description, training_autocast  # noqa: E402
from aebench.plumbing.provenance import load_average  # noqa: E402
from aebench.run import training  # noqa: E402
from baselines.vae import VAE, VAEConfig  # noqa: E402
from models.contract import AutoEncoder  # noqa: E402
from models.networks import Float32Output, Reshape  # noqa: E402

try:
    import pythae
    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE as PythaeVAE
    from pythae.models import VAEConfig as PythaeVAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig
except ImportError:
    pythae = None
    BaseEncoder = BaseDecoder = nn.Module

DATASET, BATCH, LR, LATENT, HIDDEN, SEED = "mnist-5k", 100, 1e-3, 16, 512, 0
KERNELS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default,
           torch.ops.aten.convolution.default, torch.ops.aten.convolution_backward.default}


# ---------------------------------------------------------------- the networks, the same on both sides


class MLPPosterior(nn.Module):
    """pythae's Encoder_VAE_MLP as plain layers: 784-512 ReLU, then two heads (mean, log-variance)."""

    def __init__(self, pixels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(pixels, HIDDEN), nn.ReLU())
        self.mean, self.logvar = nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)

    def forward(self, x):
        h = self.body(x)
        return self.mean(h).float(), self.logvar(h).float()  # float32 under bf16 autocast, as the suite's bodies


class MLPVAE(VAE):
    """The suite's VAE (its loss and Bernoulli likelihood) on pythae's default MLP layers. The decoder
    ends in logits, as the suite's decoders do; pythae's ends in a sigmoid. Both hand float32 back, as the
    suite's bodies do (models.networks.Float32Output), so that a bf16 run computes its loss in float32."""

    def __init__(self, image_shape):
        AutoEncoder.__init__(self, image_shape, VAEConfig(latent_dim=LATENT))
        pixels = image_shape[0] * image_shape[1] * image_shape[2]
        self.encoder = MLPPosterior(pixels)
        self.decoder = nn.Sequential(nn.Linear(LATENT, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, pixels),
                                     Reshape(*image_shape), Float32Output())

    def posterior(self, x):
        return self.encoder(x)


def copy_pythae_mlp(suite: MLPVAE, theirs) -> None:
    """Give the suite's MLP pythae's initial weights, layer by layer."""
    pairs = [(suite.encoder.body[1], theirs.encoder.layers[0][0]), (suite.encoder.mean, theirs.encoder.embedding),
             (suite.encoder.logvar, theirs.encoder.log_var), (suite.decoder[0], theirs.decoder.layers[0][0]),
             (suite.decoder[2], theirs.decoder.layers[1][0])]
    for mine, other in pairs:
        mine.load_state_dict(other.state_dict())


class WrappedEncoder(BaseEncoder):
    """A suite encoder (one output: mean and log-variance stacked) as a pythae encoder."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        mean, logvar = self.net(x).chunk(2, dim=1)
        return ModelOutput(embedding=mean, log_covariance=logvar)


class WrappedDecoder(BaseDecoder):
    """A suite decoder (logits) as a pythae decoder (probabilities, which pythae's BCE expects)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, z):
        return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))


def build_pair(network: str, shape) -> tuple[AutoEncoder, nn.Module | None]:
    """The suite's model and pythae's (None without pythae), with the same layers and weights."""
    torch.manual_seed(SEED)
    theirs = None
    if pythae is not None:
        config = PythaeVAEConfig(input_dim=tuple(shape), latent_dim=LATENT, reconstruction_loss="bce")
    if network == "mlp":
        suite = MLPVAE(shape)
        if pythae is not None:
            theirs = PythaeVAE(config)  # pythae's default encoder and decoder
            copy_pythae_mlp(suite, theirs)
    else:
        suite = VAE(shape, VAEConfig(latent_dim=LATENT, arch=network))
        if pythae is not None:
            theirs = PythaeVAE(config, encoder=WrappedEncoder(copy.deepcopy(suite.encoder)),
                               decoder=WrappedDecoder(copy.deepcopy(suite.decoder)))
    return suite, theirs


# ---------------------------------------------------------------- timing the two loops


def timed(fn, seconds: list):
    """fn, appending the wall time of every call to `seconds`."""

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds.append(time.perf_counter() - started)
        return result

    return wrapper


def time_suite(model, data, epochs: int, precision: str) -> float:
    """Seconds of the training epochs of aebench.run.training.fit in `precision` (validation excluded)."""
    seconds: list[float] = []
    config = training.TrainConfig(epochs=epochs, batch_size=BATCH, lr=LR, optimizer="adam", patience=epochs,
                                  precision=precision)
    with mock.patch.object(training, "_train_epoch", timed(training._train_epoch, seconds)):
        result = training.fit(model, data, config, seed=SEED, progress=False)
    if result.status != "ok" or len(seconds) != epochs:
        raise RuntimeError(f"suite run ended early: {result.status} {result.reason}")
    return sum(seconds)


@contextlib.contextmanager
def quiet_pythae():
    """pythae logs to the console and draws a progress bar per epoch: keep both off the screen
    (the bar still runs, writing to a buffer)."""
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict) if name.startswith("pythae")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


def time_pythae(model, data, epochs: int) -> float:
    """Seconds of pythae's BaseTrainer.train_step over the epochs (set-up, best-model copies and the
    final save excluded; no evaluation set, so no evaluation)."""
    seconds: list[float] = []
    with tempfile.TemporaryDirectory() as out, quiet_pythae():
        config = BaseTrainerConfig(output_dir=out, per_device_train_batch_size=BATCH, num_epochs=epochs,
                                   learning_rate=LR, optimizer_cls="Adam", no_cuda=True, seed=SEED)
        trainer = BaseTrainer(model, BaseDataset(data.train_x, data.train_y), None, config)
        trainer.train_step = timed(trainer.train_step, seconds)
        trainer.train()
    if len(seconds) != epochs:
        raise RuntimeError(f"pythae ran {len(seconds)} epochs, not {epochs}")
    return sum(seconds)


# ---------------------------------------------------------------- what the machine's kernels reach


class RecordKernels(TorchDispatchMode):
    """Records the matrix products and convolutions a piece of code runs: op, argument layouts."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in KERNELS:
            layout = lambda a: (tuple(a.shape), a.stride(), a.dtype) if isinstance(a, torch.Tensor) else a  # noqa: E731
            self.calls.append((func, tree_map(layout, args), tree_map(layout, kwargs)))
        return func(*args, **kwargs)


def is_spec(x) -> bool:
    """A recorded tensor: (shape, strides, dtype)."""
    return isinstance(x, tuple) and len(x) == 3 and isinstance(x[2], torch.dtype)


def fresh(spec):
    """A random tensor with a recorded shape, strides and dtype (a transposed view stays transposed)."""
    if not is_spec(spec):
        return spec
    shape, stride, dtype = spec
    size = 1 + sum((n - 1) * s for n, s in zip(shape, stride)) if all(shape) else 0
    return torch.randn(size, dtype=dtype).as_strided(shape, stride)


def step_kernels(model, x, precision: str) -> list:
    """The kernels of one training step of `model` (forward and backward) on the batch x in `precision`."""
    model = copy.deepcopy(model)
    with RecordKernels() as recorder:
        with training_autocast(precision, x.device.type):  # the forward and loss, as aebench.run.training
            loss = model.loss(x)["loss"]
        loss.backward()
    return recorder.calls


def time_kernel(func, args, kwargs, min_seconds: float = 0.05) -> tuple[float, float]:
    """(FLOPs, median seconds per call) of one recorded kernel replayed alone on fresh inputs."""
    args = tree_map(fresh, args, is_leaf=is_spec)
    kwargs = tree_map(fresh, kwargs, is_leaf=is_spec)
    with FlopCounterMode(display=False) as counter:
        func(*args, **kwargs)
    timings, total = [], 0.0
    while total < min_seconds or len(timings) < 5:
        started = time.perf_counter()
        func(*args, **kwargs)
        timings.append(time.perf_counter() - started)
        total += timings[-1]
    return counter.get_total_flops(), statistics.median(timings)


def describe(func, args) -> str:
    """mm / addmm: the product's operands; convolutions (T: transposed): the tensors' shapes."""
    name = func.__name__.split(".")[0]
    shapes = ["x".join(map(str, a[0])) for a in args if is_spec(a)]
    if name in ("mm", "addmm"):
        return f"{name:<6} {shapes[-2]} @ {shapes[-1]}" + (" + bias" if name == "addmm" else "")
    if name == "convolution":
        return f"conv{'T' if args[6] else ''} forward   input {shapes[0]}, weight {shapes[1]}"
    return f"conv{'T' if args[7] else ''} backward  grad {shapes[0]}, input {shapes[1]}, weight {shapes[2]}"


def measure_kernels(model, x, precision: str) -> tuple[float, float]:
    """Prints each kernel of a step with its rate; returns (FLOPs per step, seconds of them back to back)."""
    flops = seconds = 0.0
    calls = step_kernels(model, x, precision)
    for func, args, kwargs in calls:
        f, s = time_kernel(func, args, kwargs)
        flops, seconds = flops + f, seconds + s
        print(f"    {describe(func, args):<68} {f / 1e6:8.1f} MFLOP {f / s / 1e9:7.1f} GFLOP/s")
    print(f"    all {len(calls)} kernels: {flops / 1e6:.0f} MFLOP in {seconds * 1e3:.2f} ms, "
          f"{flops / seconds / 1e9:.1f} GFLOP/s")
    return flops, seconds


# ---------------------------------------------------------------- the report


@torch.no_grad()
def same_loss(suite, theirs, x) -> str:
    """Both models' loss on the batch x, each drawing the same noise (one randn_like of the mean's shape)."""
    torch.manual_seed(SEED)
    mine = suite.loss(x)["loss"].item()
    torch.manual_seed(SEED)
    other = theirs({"data": x}).loss.item()
    if abs(mine - other) > 1e-4 * abs(other):
        raise RuntimeError(f"the two models differ: loss {mine} (suite) against {other} (pythae)")
    return f"suite {mine:.4f}, pythae {other:.4f}"


def run_sides(precisions: list[str], with_pythae: bool) -> list[tuple[str, str]]:
    """(who, precision) of the runs of one round, in turn: the suite in each precision, then pythae in fp32
    (it has no bf16) when fp32 is measured, the precision suite/pythae compares in."""
    sides = [("suite", precision) for precision in precisions]
    return sides + [("pythae", "fp32")] if with_pythae and "fp32" in precisions else sides


def precision_tag(precision: str, precisions: list[str]) -> str:
    """' bf16', say, to label a figure; nothing when fp32 alone is measured (the script's output before
    --precision)."""
    return "" if precisions == ["fp32"] else f" {precision}"


def benchmark_network(network: str, data, repeats: int, epochs: int, precisions: list[str]) -> None:
    shape, n = data.image_shape, len(data.train_x)
    suite, theirs = build_pair(network, shape)
    print(f"\nnetwork {network}: {sum(p.numel() for p in suite.parameters()):,} parameters"
          + (f" (pythae's copy: {sum(p.numel() for p in theirs.parameters()):,})" if theirs is not None else ""))
    if theirs is not None:
        print(f"  same loss on one batch with the same noise: {same_loss(suite, theirs, data.train_x[:BATCH])}")
    kernels = {}  # precision: (FLOPs of a step, seconds of its kernels)
    for precision in precisions:
        tag = precision_tag(precision, precisions)
        print(f"  kernels of one{tag} training step (batch 100), each replayed alone:")
        kernels[precision] = measure_kernels(suite, data.train_x[:BATCH], precision)
    sides = run_sides(precisions, theirs is not None)
    labels = {side: side[0] + precision_tag(side[1], precisions) for side in sides}
    width = max(6, *map(len, labels.values()))
    rates = {side: [] for side in sides}
    for run in range(1, repeats + 1):
        for side in sides:
            who, precision = side
            suite, theirs = build_pair(network, shape)
            seconds = (time_suite(suite, data, epochs, precision) if who == "suite"
                       else time_pythae(theirs, data, epochs))
            rates[side].append(epochs * n / seconds)
            print(f"  run {run} {labels[side]:<{width}} {rates[side][-1]:8.0f} images/s  "
                  f"({seconds:.2f} s for {epochs} epoch(s))")
    steps = epochs * -(-n // BATCH)
    medians = {side: statistics.median(r) for side, r in rates.items()}
    line = "  median: " + ", ".join(f"{labels[side]} {m:.0f} images/s" for side, m in medians.items())
    if ("pythae", "fp32") in medians:
        line += f"; suite/pythae {medians['suite', 'fp32'] / medians['pythae', 'fp32']:.2f}"
    print(line)
    if {("suite", "fp32"), ("suite", "bf16")} <= medians.keys():
        faster = medians["suite", "bf16"] / medians["suite", "fp32"]  # of images/s: fp32's time over bf16's
        print(f"  bf16 speed-up (suite fp32 time / suite bf16 time): {faster:.2f}x")
    for side, m in medians.items():
        step_flops, kernel_seconds = kernels[side[1]]
        step = epochs * n / m / steps
        print(f"  a {labels[side]} step: {step * 1e3:.2f} ms, {step_flops / step / 1e9:.1f} GFLOP/s, "
              f"{kernel_seconds / step:.0%} of the kernels' rate")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", choices=("mlp", "conv", "both"), default="both")
    parser.add_argument("--repeats", type=int, default=5, help="runs per side, alternating")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per run")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--precision", default="fp32",
                        help="comma-separated, among fp32,bf16: the suite's precisions, timed alternately")
    args = parser.parse_args()
    if args.repeats < 1 or args.epochs < 1 or args.threads < 1:
        parser.error("--repeats, --epochs and --threads must be >= 1")
    args.precisions = list(dict.fromkeys(args.precision.split(",")))  # in the order given, each once
    try:
        for precision in args.precisions:  # refused before anything is measured
            check_precision(precision, "cpu")
    except UserError as error:
        parser.exit(2, f"{error}\n")
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(DATASET)
    other = f" against pythae {metadata.version('pythae')} (BaseTrainer)" if pythae is not None else ""
    print(f"throughput: the suite (aebench.run.training.fit){other}; CPU, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s); load average {load_average()}")
    print(cpu_description())
    if pythae is None:
        print("pythae is not installed (pip install -e \".[bench]\"): measuring the suite alone")
    sides = run_sides(args.precisions, pythae is not None)
    if args.precisions != ["fp32"]:
        pythae_note = "" if pythae is None else "; pythae has no bf16: " + (
            "it runs in fp32 only" if ("pythae", "fp32") in sides else "not measured without fp32")
        print(f"precision: the suite in {', '.join(args.precisions)}{pythae_note}")
    print(f"data: {DATASET}, {len(data.train_x)} training images (grey), batch {BATCH}, Adam lr {LR:g}, "
          f"{args.epochs} epoch(s) per run, {args.repeats} run(s) per side" + (", alternating" if len(sides) > 1 else ""))
    for network in ("mlp", "conv") if args.network == "both" else (args.network,):
        benchmark_network(network, data, args.repeats, args.epochs, args.precisions)


if __name__ == "__main__":
    main()
