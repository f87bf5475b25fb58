"""Probes of the latent space: k-nearest-neighbour and linear (logistic regression) classification.

Both are fit on the training latents and scored on the test latents.
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from aebench.metrics.declarations import KNN_ACC, LINEAR_ACC

METRICS = (KNN_ACC, LINEAR_ACC)  # what this module computes (declared in declarations.py: torch-free)


def knn_correct(train_z, train_y, test_z, test_y, k: int) -> np.ndarray:
    """1.0 where the k-nearest-neighbour classifier labels a test code correctly, else 0.0, in test order."""
    clf = KNeighborsClassifier(n_neighbors=k, algorithm="brute")
    clf.fit(np.asarray(train_z), np.asarray(train_y))
    return (clf.predict(np.asarray(test_z)) == np.asarray(test_y)).astype(np.float64)


def knn_accuracy(train_z, train_y, test_z, test_y, k: int) -> float:
    return float(knn_correct(train_z, train_y, test_z, test_y, k).mean())


def linear_accuracy(train_z, train_y, test_z, test_y, max_iter: int = 1000) -> float:
    """Multinomial logistic regression on standardised latents (seeded solver: deterministic)."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=0))
    # One BLAS thread, whatever the process has, so the score does not depend on --jobs: a Fashion-MNIST
    # run's latents scored with 2 threads (--jobs 1 on 2 cores) put 3 of 10000 test images in another
    # class than with 1 (--jobs 2). At 50000 x 40 one thread is also faster (1.2 s against 2.7 s).
    with threadpool_limits(1):
        clf.fit(np.asarray(train_z), np.asarray(train_y))
        return float((clf.predict(np.asarray(test_z)) == np.asarray(test_y)).mean())
