"""The one evaluation protocol: evaluate(model, data, config) -> metric rows, identical for all models.

The runner only calls this and stores the rows; each metric lives in benchmark/metrics/.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import torch

from benchmark.data import DataSplits
from benchmark.metrics.batching import batched
from benchmark.metrics.probes import knn_accuracy, linear_accuracy
from benchmark.metrics.reconstruction import reconstruction_errors
from models.contract import AutoEncoder, HyperparameterError


@dataclass
class EvalConfig:
    knn_ks: tuple[int, ...] = (1, 3, 5, 10)
    batch_size: int = 1000

    def __post_init__(self):
        self.knn_ks = tuple(self.knn_ks)
        if not self.knn_ks or min(self.knn_ks) < 1:
            raise HyperparameterError(f"evaluation knn_ks = {self.knn_ks!r}: must be integers >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


def metric_row(metric: str, value: float, split: str, n: int, backbone: str = "") -> dict:
    return {"metric": metric, "value": float(value), "split": split, "n": int(n), "backbone": backbone}


def evaluate(model: AutoEncoder, data: DataSplits, config: EvalConfig) -> list[dict]:
    model.eval()
    x_test, n_test = data.test_x, len(data.test_x)
    rows = [metric_row(name, value, "test", n_test) for name, value in
            reconstruction_errors(batched(model.reconstruct, x_test, config.batch_size), x_test.cpu()).items()]

    train_z = batched(model.encode, data.train_x, config.batch_size).numpy()
    test_z = batched(model.encode, x_test, config.batch_size).numpy()
    train_y, test_y = data.train_y.cpu().numpy(), data.test_y.cpu().numpy()
    for k in config.knn_ks:
        rows.append(metric_row(f"knn{k}_acc", knn_accuracy(train_z, train_y, test_z, test_y, k), "test", n_test))
    with warnings.catch_warnings():  # a non-converged probe is still a valid score; don't flood the log
        warnings.simplefilter("ignore")
        rows.append(metric_row("linear_acc", linear_accuracy(train_z, train_y, test_z, test_y), "test", n_test))
    return rows
