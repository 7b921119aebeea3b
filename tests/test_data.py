"""Data loading: built-in sets, .npz files and image folders, and their errors."""

import numpy as np
import pytest

from edgekd.data import load_data
from edgekd.errors import EdgeKDError


def test_digits_bundle_is_normalised_nchw():
    b = load_data("digits")
    assert b.train.x.dtype == np.float32 and b.train.x.shape[1:] == (1, 8, 8)
    assert b.num_classes == 10 and len(b.test) == 360
    assert abs(float(b.train.x.mean())) < 0.05
    assert len(b.calibration(32)) == 32
    assert set(np.unique(b.train.y)) == set(range(10))


def test_npz_nhwc_uint8_is_converted(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, size=(50, 12, 12, 3), dtype=np.uint8)
    y = np.arange(50) % 4
    np.savez(tmp_path / "d.npz", x=x, y=y)
    b = load_data(str(tmp_path / "d.npz"))
    assert b.input_shape == (3, 12, 12) and b.num_classes == 4
    assert len(b.train) + len(b.val) + len(b.test) == 50


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((5, 4))}, "must hold arrays 'x' and 'y'"),
    ({"x": np.zeros((5, 4)), "y": np.zeros(5)}, "expected"),
    ({"x": np.zeros((5, 8, 8)), "y": np.zeros(4)}, "5 samples but y has 4"),
])
def test_npz_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(EdgeKDError, match=message):
        load_data(str(tmp_path / "bad.npz"))


def test_corrupt_npz_and_missing_path(tmp_path):
    (tmp_path / "c.npz").write_bytes(b"not a zip")
    with pytest.raises(EdgeKDError, match="cannot read"):
        load_data(str(tmp_path / "c.npz"))
    with pytest.raises(EdgeKDError, match="not found"):
        load_data(str(tmp_path / "nope"))


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)).save(tmp_path / c / f"{i}.png")
    b = load_data(str(tmp_path))
    assert b.input_shape == (3, 10, 10) and b.num_classes == 2
    assert b.source["classes"] == ["cat", "dog"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgeKDError, match="no class sub-folders"):
        load_data(str(tmp_path / "empty"))
