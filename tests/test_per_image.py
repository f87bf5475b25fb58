"""Per-image values of the per-image metrics (recon_sse, recon_mse, knn{k}_acc, denoise_sse_s{sigma}):
one value per scored test image, in test-set order, whose mean is the metrics.csv value, so that a
bootstrap over test images can pair two runs image by image."""
import numpy as np
import torch
from conftest import PixelIdentity

from aebench.run.evaluation import EvalConfig, evaluate, per_image_names


class ZeroDecoder(PixelIdentity):
    """Codes are the pixels, every reconstruction is a black image: each image's SSE is its own sum of
    squares, whatever the noise added to it, and kNN on the codes is kNN on the pixels."""

    def decode(self, z):
        return torch.zeros((len(z), *self.image_shape))

    def sample(self, n, generator=None):
        return self.decode(torch.zeros(n, 1))


CONFIG = EvalConfig(fid_samples=0, knn_ks=(1, 5), denoise_sigmas=(0.0, 0.3))


def test_per_image_values_are_known_in_test_order_and_average_to_the_rows(digits):
    scores = evaluate(ZeroDecoder(digits.image_shape), digits, CONFIG)
    rows = {row["metric"]: row for row in scores}
    assert list(scores.per_image) == per_image_names(CONFIG) == [
        "recon_sse", "recon_mse", "knn1_acc", "knn5_acc", "denoise_sse_s0", "denoise_sse_s0.3"]
    own_squares = (digits.test_x.double() ** 2).flatten(1).sum(1).numpy()  # test image i's SSE against black
    for name in ("recon_sse", "denoise_sse_s0", "denoise_sse_s0.3"):
        np.testing.assert_allclose(scores.per_image[name], own_squares, rtol=1e-6)
    np.testing.assert_allclose(scores.per_image["recon_mse"], own_squares / 64, rtol=1e-6)
    # 1-NN on pixels, by brute force here: image i is right when its nearest training image shares its label
    distances = torch.cdist(digits.test_x.flatten(1).double(), digits.train_x.flatten(1).double())
    nearest_label = digits.train_y[distances.argmin(1)]
    np.testing.assert_array_equal(scores.per_image["knn1_acc"], (nearest_label == digits.test_y).double().numpy())
    assert set(np.unique(scores.per_image["knn5_acc"])) <= {0.0, 1.0}
    for name, values in scores.per_image.items():
        assert values.dtype == np.float64 and values.shape == (rows[name]["n"],) == (len(digits.test_x),)
        assert values.mean() == rows[name]["value"]  # the row's value is this very mean


def test_the_generation_scope_has_no_per_image_values(digits):
    config = EvalConfig(fid_samples=50, fid_backbone="classifier", scope="generation")
    assert per_image_names(config) == []
    assert evaluate(ZeroDecoder(digits.image_shape), digits, config, log=lambda *_: None).per_image == {}
