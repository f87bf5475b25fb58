"""Training the FID classifier: a small conv net, trained to convergence on the images it is given.

The training images are split (seeded) into a part it fits and its OWN validation part (never the
benchmark's validation or test split). It trains in rounds - an epoch, or at least
Schedule.round_min_steps steps on small data - with Adam on randomly shifted images; after each round
the validation loss decides: a better loss keeps those weights; `patience` rounds without one divide
the learning rate by `lr_drop`, and after `lr_drops` drops the next such plateau ends training
("converged"). `max_rounds` caps it ("cap"), so it always ends. The weights of the best validation
loss are returned.

Everything runs in float64 on one CPU thread: the weights are then the same whichever process,
thread count or CPU kernels train them (see aebench.features.backbones).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

CLASSIFIER_VERSION = 4  # bump when the architecture or its training changes: old caches are then ignored
CLASSIFIER_DTYPE = torch.float64  # since v3: portable across CPU kernels
# On a CPU the trained weights depend, in their last bits, on how many threads split each reduction;
# one thread always makes the same classifier, whichever process (a worker, a serial run) trains it.
CLASSIFIER_THREADS = 1
CLASSIFIER_FEATURES = 64
CLASSIFIER_SEED = 0
CLASSIFIER_BATCH = 128


@dataclass(frozen=True)
class Schedule:
    """How long the classifier trains: until its validation loss stops improving, within a cap."""

    val_fraction: float = 0.1  # of the training images, held out for early stopping
    lr: float = 3e-3
    round_min_steps: int = 20  # a round is an epoch, or this many steps where an epoch is shorter (digits: 9)
    patience: int = 2  # rounds without a better validation loss before the learning rate drops
    lr_drop: float = 5.0
    lr_drops: int = 2  # the plateau after the last drop ends training
    max_rounds: int = 30  # the cap: training always ends


SCHEDULE = Schedule()


class ClassifierNet(nn.Module):
    """conv 32 /2 -> conv 64 /2, each batch-normalised -> linear FEATURES (the FID features) -> ReLU -> classes.

    Strided from the first layer (cheap in float64 on one core), except on images under 14 px
    (8x8 digits), where the first layer keeps the resolution. v4 added the batch normalisation: on
    MNIST, at 3x the learning rate, its validation loss after 6 epochs (0.029) was below that of the
    same net without it after 22 (0.031), and its test accuracy went from 99.0% to 99.3%. (It also maps
    8x8 uniform noise nearer the digits: precision of noise 0.72, v3 0.21; on 28x28, 0.00 either way.)"""

    def __init__(self, image_shape, num_classes: int, features: int = CLASSIFIER_FEATURES):
        super().__init__()
        c, h, w = image_shape
        first_stride = 2 if min(h, w) >= 14 else 1
        shrink = 2 * first_stride
        self.body = nn.Sequential(
            nn.Conv2d(c, 32, 3, first_stride, 1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, 2, 1), nn.BatchNorm2d(64), nn.ReLU(), nn.Flatten(),
            nn.Linear(64 * math.ceil(h / shrink) * math.ceil(w / shrink), features))
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(features, num_classes))

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


@dataclass
class TrainedClassifier:
    net: ClassifierNet
    test_accuracy: float
    steps: int  # steps taken (the returned weights are those of the best round, at or before this)
    rounds: int
    stopped_by: str  # "converged" (early stopping) or "cap" (max_rounds reached)
    val_accuracy: float  # of the returned weights, on the classifier's own validation part
    val_losses: list[float]  # after each round
    lrs: list[float]  # the learning rate of each round
    fit_index: torch.Tensor  # the training images it fitted ...
    val_index: torch.Tensor  # ... and those it held out for early stopping
    seconds: float


def validation_split(n: int, seed: int, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(fit, val) indices into the n training images: a seeded random part of `fraction` held out."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(fraction * n))
    return order[n_val:].sort().values, order[:n_val].sort().values


def random_shifts(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Augmentation: every image moved by its own random offset of up to 1/14 of the side (2 px on
    28x28, zero-filled); none under 14 px, where one pixel is too much of the digit. Whole pixels, so
    no interpolation rounds differently on other kernels."""
    margin = min(x.shape[2:]) // 14
    if margin == 0:
        return x
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (margin,) * 4)
    dy, dx = torch.randint(0, 2 * margin + 1, (2, n), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (n, h, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (n, 1, w)
    return padded[torch.arange(n, device=x.device)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)


def evaluate_classifier(net: nn.Module, x: torch.Tensor, y: torch.Tensor,
                        batch_size: int = 1000) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of net on labelled images, in eval mode."""
    net.eval()
    dtype = next(net.parameters()).dtype
    with torch.inference_mode():
        logits = torch.cat([net(x[i:i + batch_size].to(dtype)) for i in range(0, len(x), batch_size)])
    return (logits.argmax(1) == y).double().mean().item(), nn.functional.cross_entropy(logits, y).item()


def train_classifier(data, seed: int = CLASSIFIER_SEED, schedule: Schedule = SCHEDULE,
                     log=None) -> TrainedClassifier:
    """The classifier of `data` (a DataSplits), trained on its train split as the module docstring says
    (dynamically binarised when the data is); `log`, if given, gets a line per round. The global RNG
    and thread count are left as they were, so evaluating never changes what a run draws afterwards."""
    threads = torch.get_num_threads()
    if data.train_x.device.type == "cpu":
        torch.set_num_threads(CLASSIFIER_THREADS)
    try:
        with torch.random.fork_rng(devices=[]):
            return _train_classifier(data, seed, schedule, log)
    finally:
        torch.set_num_threads(threads)


class _Plateau:
    """The early-stopping state: the best validation loss, its weights, and the learning-rate drops."""

    def __init__(self, net: nn.Module, optimizer: torch.optim.Optimizer, schedule: Schedule):
        self.net, self.optimizer, self.schedule = net, optimizer, schedule
        self.best_loss, self.best_state, self.stale, self.drops = math.inf, None, 0, 0

    def converged_after(self, val_loss: float) -> bool:
        """Record one round's validation loss; True when training should end."""
        if val_loss < self.best_loss:
            self.best_loss, self.stale = val_loss, 0
            self.best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            return False
        self.stale += 1
        if self.stale < self.schedule.patience:
            return False
        if self.drops == self.schedule.lr_drops:
            return True
        self.drops, self.stale = self.drops + 1, 0
        for group in self.optimizer.param_groups:
            group["lr"] /= self.schedule.lr_drop
        return False


def _train_classifier(data, seed: int, schedule: Schedule, log) -> TrainedClassifier:
    start = time.perf_counter()
    device = data.train_x.device
    torch.manual_seed(seed)  # the initial weights (the global RNG is forked by the caller)
    net = ClassifierNet(data.image_shape, data.num_classes).to(device, CLASSIFIER_DTYPE)
    optimizer = torch.optim.Adam(net.parameters(), lr=schedule.lr)
    fit_index, val_index = validation_split(len(data.train_x), seed, schedule.val_fraction)
    rng = torch.Generator().manual_seed(seed)
    binarize_rng = torch.Generator(device=device).manual_seed(seed)
    val_x = data.train_batch(val_index.to(device), torch.Generator(device=device).manual_seed(seed + 1))
    val_y = data.train_y[val_index.to(device)]
    n_fit = len(fit_index)
    round_steps = max(math.ceil(n_fit / CLASSIFIER_BATCH), schedule.round_min_steps)
    plateau, val_losses, lrs, steps, stopped_by = _Plateau(net, optimizer, schedule), [], [], 0, "cap"
    order, position = fit_index[torch.randperm(n_fit, generator=rng)], 0
    for _ in range(schedule.max_rounds):
        net.train()
        lrs.append(optimizer.param_groups[0]["lr"])
        for _ in range(round_steps):
            if position + CLASSIFIER_BATCH > n_fit:
                order, position = fit_index[torch.randperm(n_fit, generator=rng)], 0
            index = order[position:position + CLASSIFIER_BATCH].to(device)
            position += CLASSIFIER_BATCH
            x = random_shifts(data.train_batch(index, binarize_rng).to(CLASSIFIER_DTYPE), rng)
            loss = nn.functional.cross_entropy(net(x), data.train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        steps += round_steps
        val_losses.append(evaluate_classifier(net, val_x, val_y)[1])
        if log:
            log(f"  round {len(val_losses)}: {steps} steps, validation loss {val_losses[-1]:.4f}, "
                f"lr {lrs[-1]:.1e}, {time.perf_counter() - start:.0f} s")
        if plateau.converged_after(val_losses[-1]):
            stopped_by = "converged"
            break
    if plateau.best_state is not None:  # None only when every validation loss was NaN (diverged)
        net.load_state_dict(plateau.best_state)
    return TrainedClassifier(net, evaluate_classifier(net, data.test_x, data.test_y)[0], steps, len(val_losses),
                             stopped_by, evaluate_classifier(net, val_x, val_y)[0], val_losses, lrs, fit_index, val_index,
                             time.perf_counter() - start)
