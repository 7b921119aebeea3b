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
    ({"x": np.zeros((5, 2, 2, 2, 2)), "y": np.zeros(5)}, "expected"),
    ({"x": np.zeros((5, 8, 8)), "y": np.zeros(4)}, "5 samples but y has 4"),
    ({"x": np.zeros((6, 8, 8)), "y": np.array([0, 1, -1, 0, 1, 0])}, "negative labels"),
    ({"x": np.zeros((6, 8, 8)), "y": np.array([0.5, 1, 2, 0, 1, 0])}, "class indices"),
    ({"x": np.zeros((6, 8, 8)), "y": np.zeros(6, dtype=int)}, "single class"),
    ({"x": np.full((6, 8, 8), np.nan), "y": np.arange(6) % 2}, "NaN or infinite"),
])
def test_npz_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(EdgeKDError, match=message):
        load_data(str(tmp_path / "bad.npz"))


def test_npz_string_and_float_labels(tmp_path):
    x = np.random.default_rng(0).random((40, 6, 6), dtype=np.float32)
    np.savez(tmp_path / "s.npz", x=x[:30], y=np.array(["dog", "cat", "emu"] * 10), x_test=x[30:],
             y_test=np.array(["emu", "cat"] * 5))
    b = load_data(str(tmp_path / "s.npz"))
    assert b.num_classes == 3 and b.describe()["classes"] == ["cat", "dog", "emu"]
    assert b.test.y.tolist() == [2, 0] * 5
    np.savez(tmp_path / "f.npz", x=x, y=(np.arange(40) % 2).astype(np.float64))  # 0.0 / 1.0 saved as floats
    assert load_data(str(tmp_path / "f.npz")).num_classes == 2


def test_corrupt_npz_and_missing_path(tmp_path):
    (tmp_path / "c.npz").write_bytes(b"not a zip")
    with pytest.raises(EdgeKDError, match="not a readable .npz archive"):
        load_data(str(tmp_path / "c.npz"))
    with pytest.raises(EdgeKDError, match="does not exist"):
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


def test_image_folder_of_mixed_modes_and_a_corrupt_file(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(6):
            rgb = Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8))
            # the first image is grayscale: the folder is still read as RGB because the others are colour
            (rgb.convert("L") if i == 0 else rgb.convert("RGBA") if i == 1 else rgb).save(tmp_path / c / f"{i}.png")
    (tmp_path / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    b = load_data(str(tmp_path), normalize="none")
    assert b.input_shape == (3, 10, 12) and len(b.train) + len(b.val) + len(b.test) == 12
    assert len(b.source["skipped_unreadable"]) == 1 and "broken.jpg" in b.source["skipped_unreadable"][0]


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.fromarray(np.full((8, 8), 1000 * (i + 1) * (2 if c == "b" else 1), np.uint16)).save(tmp_path / c / f"{i}.png")
    b = load_data(str(tmp_path), normalize="none")
    assert b.input_shape == (1, 8, 8)
    x = np.concatenate([b.train.x, b.val.x, b.test.x])
    assert 0.0 < x.min() and x.max() < 0.2  # 1000..6000 of 65535, not 255 -> white


def test_normalize_choices_give_the_expected_pixels():
    raw = load_data("digits", normalize="none")
    assert raw.mean == [0.0] and raw.std == [1.0]
    assert float(raw.train.x.min()) >= 0.0 and float(raw.train.x.max()) <= 1.0
    half = load_data("digits", normalize="half")
    np.testing.assert_allclose(half.train.x, (raw.train.x - 0.5) / 0.5, atol=1e-6)
    custom = load_data("digits", normalize="0.25/0.5")
    np.testing.assert_allclose(custom.test.x, (raw.test.x - 0.25) / 0.5, atol=1e-6)
    assert custom.describe()["normalize"] == "0.25/0.5" and custom.describe()["normalisation"]["std"] == [0.5]
    assert load_data("digits").describe()["normalize"] == "dataset"


@pytest.mark.parametrize("kw, message", [
    ({"normalize": "imagenet"}, "3 mean / 3 std values but data 'digits' has 1 channel"),
    ({"normalize": "0.5/0"}, "every std > 0"),
    ({"normalize": "bogus"}, "want dataset, none"),
    ({"image_size": "0"}, "positive integers"),
    ({"image_size": "8x8x8"}, "N or HxW"),
])
def test_preprocessing_errors(kw, message):
    with pytest.raises(EdgeKDError, match=message):
        load_data("digits", **kw)


def test_image_size_resizes_arrays_and_folders(tmp_path):
    from PIL import Image

    b = load_data("digits", image_size="16x12", normalize="none")
    assert b.input_shape == (1, 16, 12) and b.test.x.shape[1:] == (1, 16, 12)
    assert float(b.train.x.max()) <= 1.0
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i, size in enumerate((9, 14, 20)):  # mixed sizes: --image-size makes them one shape
            Image.fromarray(rng.integers(0, 255, (size, size + 1, 3), dtype=np.uint8)).save(tmp_path / c / f"{i}.png")
    f = load_data(str(tmp_path), image_size=24, normalize="imagenet")
    assert f.input_shape == (3, 24, 24)
    assert f.mean == pytest.approx([0.485, 0.456, 0.406])


def test_npz_feature_vectors_are_standardised_per_feature(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=(200, 6)).astype(np.float32)
    x[:, 2] = 7.0  # a constant feature must stay finite (centred, not divided by ~0)
    np.savez(tmp_path / "tab.npz", x=x, y=np.arange(200) % 3)
    b = load_data(str(tmp_path / "tab.npz"))
    assert b.layout == "NF" and b.input_shape == (6,) and b.train.x.shape[1:] == (6,)
    assert len(b.mean) == 6 and b.std[2] == 1.0
    assert np.isfinite(b.test.x).all() and np.abs(b.train.x[:, 2]).max() == 0.0
    assert np.allclose(b.train.x.mean(axis=0)[[0, 1, 3]], 0.0, atol=0.2)
    assert b.describe()["layout"] == "NF"


@pytest.mark.parametrize("kw, message", [
    ({"image_size": 8}, "holds feature vectors"),
    ({"normalize": "imagenet"}, "has 6 feature"),
])
def test_feature_vector_preprocessing_errors(tmp_path, kw, message):
    np.savez(tmp_path / "tab.npz", x=np.zeros((20, 6), np.float32), y=np.arange(20) % 2)
    with pytest.raises(EdgeKDError, match=message):
        load_data(str(tmp_path / "tab.npz"), **kw)


def test_npz_test_split_of_another_shape(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((20, 6)), y=np.arange(20) % 2, x_test=np.zeros((4, 5)), y_test=np.arange(4) % 2)
    with pytest.raises(EdgeKDError, match=r"x samples are \(6,\) but x_test samples are \(5,\)"):
        load_data(str(tmp_path / "d.npz"))


def test_unlabeled_samples_are_prepared_like_the_data(tmp_path):
    from edgekd.data.loaders import prepare_like

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(40, 12, 12, 3), dtype=np.uint8)  # raw NHWC bytes, as saved by most tools
    xt = rng.integers(0, 255, size=(8, 12, 12, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(40) % 2, x_test=xt, y_test=np.arange(8) % 2)
    b = load_data(str(tmp_path / "d.npz"))
    assert np.allclose(prepare_like(b, xt), b.test.x, atol=1e-5)
    small = load_data(str(tmp_path / "d.npz"), image_size=6)
    assert prepare_like(small, xt).shape == (8, 3, 6, 6)
    with pytest.raises(EdgeKDError, match=r"samples of shape \(1, 12, 12\); the data's are \(3, 12, 12\)"):
        prepare_like(b, xt[..., 0])


def test_image_folder_too_big_for_memory_is_refused_with_the_fix(tmp_path, monkeypatch):
    from PIL import Image

    import edgekd.data.loaders as loaders

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / c / f"{i}.png")
    monkeypatch.setattr(loaders, "available_memory_bytes", lambda: 200_000)  # pretend a tiny machine
    with pytest.raises(EdgeKDError, match=r"6 images at this size need .* pass a smaller --image-size"):
        load_data(str(tmp_path))
    assert load_data(str(tmp_path), image_size=8).input_shape == (3, 8, 8)


def test_image_folder_splits(tmp_path):
    """train/ alone: a fifth is held out (the test set is never the training set); test/ classes join the index."""
    from PIL import Image

    rng = np.random.default_rng(0)

    def put(split, cls, n):
        (tmp_path / split / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)).save(tmp_path / split / cls / f"{i}.png")

    put("train", "a", 10)
    put("train", "b", 10)
    b = load_data(str(tmp_path))
    assert len(b.test) == 4 and len(b.train) + len(b.val) == 16
    put("test", "a", 2)
    put("test", "c", 2)  # a class seen only in test/
    b = load_data(str(tmp_path))
    assert b.source["classes"] == ["a", "b", "c"] and b.num_classes == 3
    assert len(b.test) == 4 and sorted(set(b.test.y.tolist())) == [0, 2]


def test_dataset_statistics_of_large_values_are_finite(tmp_path):
    """float32 squares of 1e30 overflowed (a numpy RuntimeWarning, then inf std and all-zero inputs)."""
    import warnings

    from edgekd.data import load_data

    rng = np.random.default_rng(0)
    x = (rng.random((60, 1, 4, 4)) * 1e30).astype(np.float32)
    np.savez(tmp_path / "big.npz", x=x, y=np.arange(60) % 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        b = load_data(str(tmp_path / "big.npz"))
    assert np.isfinite(b.std).all() and np.isfinite(b.train.x).all() and b.train.x.std() > 0.1
