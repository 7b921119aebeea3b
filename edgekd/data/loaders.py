"""Turn a --data spec into a DataBundle: built-in names, an image folder, or an .npz with x/y arrays."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np

from edgekd.core.files import sha256_file
from edgekd.core.inputs import one_line
from edgekd.data.bundle import ArrayDataset, DataBundle
from edgekd.errors import EdgeKDError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".pgm", ".ppm", ".tif", ".tiff"}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "F"}
# Per-channel statistics a pretrained teacher may expect (timm/torchvision ImageNet models; [-1, 1] inputs).
NORMALIZE_PRESETS = {"imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), "half": ([0.5], [0.5])}
NORMALIZE_HELP = ("input normalisation the teacher expects: dataset (per-channel mean/std of the training split), "
                  "none (pixels in [0, 1]), imagenet, half ([-1, 1]), or MEAN/STD such as 0.5,0.4,0.4/0.2,0.2,0.2")
IMAGE_SIZE_HELP = "resize every image to N or HxW pixels (default: the first image's size)"


def fashion_mnist_available() -> bool:
    return (FASHION_DIR / "train-images-idx3-ubyte.gz").exists()


def parse_image_size(spec: str | int | None) -> tuple[int, int] | None:
    """"32" or 32 -> (32, 32); "24x32" -> (24, 32) as (height, width)."""
    if spec is None or spec == "":
        return None
    parts = str(spec).lower().replace("×", "x").split("x")
    try:
        hw = [int(p) for p in parts]
    except ValueError:
        hw = []
    if len(hw) == 1:
        hw = hw * 2
    if len(hw) != 2 or min(hw) < 1:
        raise EdgeKDError(f"image size {spec!r}: want N or HxW with positive integers, e.g. 32 or 224x224")
    return hw[0], hw[1]


def parse_normalize(spec: str | None) -> str | tuple[list[float], list[float]]:
    """"dataset" | "none" | a preset name | "MEAN/STD" (comma-separated per channel, or one value for all)."""
    name = (spec or "dataset").strip().lower()
    if name in ("dataset", "none"):
        return name
    if name in NORMALIZE_PRESETS:
        return NORMALIZE_PRESETS[name]
    mean_s, sep, std_s = name.partition("/")
    try:
        mean, std = [float(v) for v in mean_s.split(",")], [float(v) for v in std_s.split(",")]
    except ValueError:
        mean = std = []
    if not sep or not mean or not std or min(std) <= 0:
        raise EdgeKDError(f"normalize {spec!r}: want dataset, none, {', '.join(NORMALIZE_PRESETS)} or MEAN/STD "
                          "(e.g. 0.485,0.456,0.406/0.229,0.224,0.225; every std > 0)")
    return mean, std


def load_data(spec: str | None = None, *, seed: int = 0, val_fraction: float = 0.1, image_size: str | int | None = None,
              normalize: str | None = "dataset", need_labels: bool = True) -> DataBundle:
    """`spec`: "fashion-mnist", "digits", "auto"/None (Fashion-MNIST if installed, else digits),
    a folder of images (one sub-folder per class, optional train/ and test/ splits) or an .npz file.
    `image_size` resizes the images; `normalize` says how pixels in [0, 1] are standardised (NORMALIZE_HELP).
    need_labels=False (calibration, parity) also accepts images without class sub-folders and an .npz holding
    only x (and optionally x_test): the bundle's y arrays are then None and num_classes 0."""
    size = parse_image_size(image_size)
    norm = parse_normalize(normalize)
    train, test, k, name, src = _read(spec, seed, size, need_labels)
    if size and train[0].ndim != 4:
        raise EdgeKDError(f"--image-size {image_size}: data '{spec}' holds feature vectors {tuple(train[0].shape[1:])}, "
                          "not images")
    if size and tuple(train[0].shape[2:]) != size:
        train, test = (_resize(train[0], size), train[1]), (_resize(test[0], size), test[1])
    return _bundle(name, train, test, k, seed, val_fraction, {**src, "normalize": (normalize or "dataset").strip()}, norm)


def prepare_like(bundle: DataBundle, x: np.ndarray, what: str = "unlabeled data") -> np.ndarray:
    """Raw samples (uint8 or [0, 1] floats, NCHW or NHWC, or feature vectors) made exactly like `bundle`'s inputs:
    same layout, image size and normalisation, so the teacher sees what it sees in training."""
    x = _as_samples(np.asarray(x), what)
    want = tuple(bundle.input_shape)
    if x.ndim == 4 and x.shape[1] == want[0] and x.shape[2:] != want[1:]:
        x = _resize(x, want[1:])
    if tuple(x.shape[1:]) != want:
        raise EdgeKDError(f"{what} has samples of shape {tuple(x.shape[1:])}; the data's are {want}")
    if not np.isfinite(x).all():
        raise EdgeKDError(f"{what} holds NaN or infinite values")
    return _standardise(x, np.float32(bundle.mean), np.float32(bundle.std))


def _standardise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std along axis 1: the channel of images, the feature of vectors."""
    per_channel = (1, -1) + (1,) * (x.ndim - 2)
    return ((x - mean.reshape(per_channel)) / std.reshape(per_channel)).astype(np.float32)


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    t = F.interpolate(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), size=size, mode="bilinear",
                      antialias=True, align_corners=False)
    return t.clamp_(0.0, 1.0).numpy()


def _read(spec: str | None, seed: int, size: tuple[int, int] | None, need_labels: bool = True):
    """(train, test, num_classes, name, source): images as float32 NCHW in [0, 1], or (N, F) feature vectors."""
    spec = (spec or "auto").strip()
    name = spec.lower().replace("_", "-")
    if name == "auto":
        name = "fashion-mnist" if fashion_mnist_available() else "digits"
    if name == "fashion-mnist":
        train, test, src = _fashion_mnist()
        return train, test, 10, "fashion-mnist", {**src, "test_split": "given"}
    if name == "digits":
        train, test, src = _digits(seed)
        return train, test, 10, "digits", {**src, "test_split": "given"}
    path = Path(spec).expanduser()
    if not path.exists():
        raise EdgeKDError(f"data '{spec}' does not exist: give fashion-mnist, digits, an image folder or an .npz file")
    if path.is_dir():
        train, test, k, src = _image_folder(path, size, seed, need_labels)
        return train, test, k, path.name, src
    if path.suffix == ".npz":
        from edgekd.core.inputs import require_file

        require_file(path, "data file")
        train, test, k, src = _npz(path, seed, need_labels)
        return train, test, k, path.stem, src
    raise EdgeKDError(f"data '{spec}' is neither a folder nor an .npz file")


def _bundle(name, train, test, num_classes, seed, val_fraction, source, normalize="dataset") -> DataBundle:
    x, y = train
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_val = max(1, min(5000, int(round(len(x) * val_fraction))))
    val_idx, train_idx = order[:n_val], order[n_val:]
    mean, std = _statistics(normalize, x[train_idx], name)

    def norm(a):
        return _standardise(a, mean, std)

    def labels(idx):  # None for unlabeled data (calibration only)
        return None if y is None else y[idx]

    return DataBundle(
        name=name,
        train=ArrayDataset(norm(x[train_idx]), labels(train_idx)),
        val=ArrayDataset(norm(x[val_idx]), labels(val_idx)),
        test=ArrayDataset(norm(test[0]), test[1]),
        num_classes=int(num_classes),
        input_shape=tuple(int(d) for d in x.shape[1:]),
        mean=[float(m) for m in mean],
        std=[float(s) for s in std],
        layout="NCHW" if x.ndim == 4 else "NF",
        source=source,
    )


def _statistics(norm, x_train: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (mean, std) for the chosen normalisation; "dataset" uses the training split only."""
    c = x_train.shape[1]
    axes = (0,) + tuple(range(2, x_train.ndim))  # per channel for images, per feature for vectors
    if norm == "dataset":
        # float64: squares of large float32 values (raw sensor counts, 1e20+) overflow to inf and zero the data
        std = x_train.std(axis=axes, dtype=np.float64)
        std = np.where(std < 1e-6, 1.0, std + 1e-6)  # a constant channel/feature is centred, not blown up
        return x_train.mean(axis=axes, dtype=np.float64).astype(np.float32), std.astype(np.float32)
    if norm == "none":
        return np.zeros(c, np.float32), np.ones(c, np.float32)
    mean, std = norm
    if len(mean) not in (1, c) or len(std) not in (1, c):
        what = "feature" if x_train.ndim == 2 else "channel"
        raise EdgeKDError(f"normalize has {len(mean)} mean / {len(std)} std values but data '{name}' has {c} {what}(s)")
    return (np.broadcast_to(np.float32(mean), (c,)).copy().astype(np.float32),
            np.broadcast_to(np.float32(std), (c,)).copy().astype(np.float32))


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise EdgeKDError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _fashion_mnist():
    if not fashion_mnist_available():
        raise EdgeKDError(
            f"Fashion-MNIST is not installed at {FASHION_DIR}: apt-get install dataset-fashion-mnist, or use --data digits"
        )
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        xi = FASHION_DIR / f"{prefix}-images-idx3-ubyte.gz"
        yi = FASHION_DIR / f"{prefix}-labels-idx1-ubyte.gz"
        x = _read_idx(xi).astype(np.float32)[:, None] / 255.0
        parts[split] = (x, _read_idx(yi).astype(np.int64))
    src = {"path": str(FASHION_DIR), "train_images_sha256": sha256_file(FASHION_DIR / "train-images-idx3-ubyte.gz")}
    return parts["train"], parts["test"], src


def _digits(seed: int):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    # Fixed split (not the run seed) so every run is scored on the same test images.
    order = np.random.default_rng(1234).permutation(len(x))
    n_test = 360
    te, tr = order[:n_test], order[n_test:]
    return (x[tr], y[tr]), (x[te], y[te]), {"path": "sklearn.datasets.load_digits"}


def _folder_files(root: Path, splits: dict[str, Path], need_labels: bool):
    """(classes, {split: [(file, class index)]}); without class sub-folders and need_labels=False, the images
    lying in each split folder itself, with class index -1 (unlabeled)."""
    # the union over splits: a class folder only under test/ still gets its own index, in sorted order
    classes = sorted({p.name for d in splits.values() for p in d.iterdir() if p.is_dir()})
    if not classes and not need_labels:
        files = {s: [(f, -1) for f in sorted(d.glob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
                 for s, d in splits.items()}
        if not any(files.values()):
            raise EdgeKDError(f"image folder {root} has no class sub-folders and no images of its own (expected "
                              f"{root}/<class>/<image>, or, unlabeled, {root}/<image>)")
        return [], files
    if not classes:
        raise EdgeKDError(f"image folder {root} has no class sub-folders (expected {root}/<class>/<image>)")
    if len(classes) < 2:
        raise EdgeKDError(f"image folder {root} has one class sub-folder ({classes[0]}); a classifier needs at least "
                          "2 classes (one sub-folder per class)")
    return classes, {s: [(f, i) for i, c in enumerate(classes) for f in sorted((d / c).glob("*"))
                         if f.suffix.lower() in IMAGE_SUFFIXES] for s, d in splits.items()}


def _image_folder(root: Path, image_size: tuple[int, int] | None, seed: int, need_labels: bool = True):
    from PIL import Image

    splits = {s: root / s for s in ("train", "test") if (root / s).is_dir()}
    if "train" not in splits:
        splits = {"all": root}
    classes, files = _folder_files(root, splits, need_labels)
    if not any(files.values()):
        raise EdgeKDError(f"image folder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    # one mode for all: grayscale only when every image is; a corrupt file is skipped (and reported), not fatal
    headers, skipped = {}, []
    for lst in files.values():
        for f, _ in lst:
            try:
                with Image.open(f) as im:
                    headers[f] = (im.mode, im.size)
            except (OSError, ValueError) as exc:
                skipped.append(f"{f.relative_to(root)} ({str(exc).splitlines()[0][:80]})")
    files = {s: [(f, i) for f, i in lst if f in headers] for s, lst in files.items()}
    if not headers or not all(files.values()):
        raise EdgeKDError(f"image folder {root}: no readable images{' in a split' if headers else ''} "
                          f"({len(skipped)} unreadable, e.g. {skipped[0] if skipped else '-'})")
    mode = "L" if all(m in GRAY_MODES for m, _ in headers.values()) else "RGB"
    first = next(f for lst in files.values() for f, _ in lst)
    size = (image_size[1], image_size[0]) if image_size else headers[first][1]  # PIL sizes are (width, height)
    _check_fits_in_memory(root, len(headers), (1 if mode == "L" else 3) * size[0] * size[1])

    def load(lst):
        xs = []
        for f, _ in lst:
            try:
                with Image.open(f) as im:
                    xs.append(_pixels(im, mode, size))
            except OSError as exc:
                raise EdgeKDError(f"cannot read image {f}: {exc}") from None
        x = np.stack(xs)
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        return x, (np.array([i for _, i in lst], dtype=np.int64) if classes else None)

    if files.get("test"):
        train, test = load(files["train"]), load(files["test"])
        split = "given"
    else:  # no test split (or only train/): hold out a fifth, never report accuracy on training images
        train, test = _hold_out_fifth(*load(files.get("all") or files["train"]), seed)
        split = "held out"
    src = {"path": str(root), "classes": classes, "test_split": split, "labelled": bool(classes)}
    if skipped:
        src["skipped_unreadable"] = skipped
    return train, test, len(classes), src


def _hold_out_fifth(x: np.ndarray, y: np.ndarray | None, seed: int):
    """(train, test) with a seeded fifth of the samples held out as the test split."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = max(1, len(x) // 5)
    tr, te = order[n_test:], order[:n_test]
    return (x[tr], None if y is None else y[tr]), (x[te], None if y is None else y[te])


def _check_fits_in_memory(root: Path, n: int, values_per_image: int) -> None:
    """Every image is held as float32 (and normalised into a second copy): refuse, with the fix, a folder that
    would exhaust memory instead of letting the kernel kill the process mid-run."""
    need = 2 * 4 * n * values_per_image
    avail = available_memory_bytes()
    if avail and need > 0.8 * avail:
        raise EdgeKDError(f"image folder {root}: {n} images at this size need ~{need / 2**30:.1f} GiB in memory, "
                          f"{avail / 2**30:.1f} GiB is available; pass a smaller --image-size (e.g. 224)")


def available_memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _pixels(im, mode: str, size: tuple[int, int]) -> np.ndarray:
    """float32 in [0, 1]; 16-bit and 32-bit grayscale are scaled by their range, not clipped at 255."""
    from PIL import Image

    if im.mode in WIDE_MODES:
        a = np.asarray(im, dtype=np.float32) / (1.0 if im.mode == "F" else 65535.0)
        im = Image.fromarray((np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "L")
    return np.asarray(im.convert(mode).resize(size), dtype=np.float32) / 255.0


def _as_samples(x: np.ndarray, what: str) -> np.ndarray:
    if x.dtype.kind not in "fiub":  # strings, bytes, dates: astype would fail with numpy's words, or mean nothing
        raise EdgeKDError(f"{what} must hold numbers (pixels or features); got dtype {x.dtype}")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    x = x.astype(np.float32)
    if x.ndim == 2:  # (N, F) feature vectors (tabular, sensor windows flattened, embeddings): used as they are
        return x
    if x.ndim == 3:  # (N, H, W) grayscale
        return x[:, None]
    if x.ndim == 4:
        if x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):  # NHWC
            return x.transpose(0, 3, 1, 2).copy()
        return x
    raise EdgeKDError(f"{what} has shape {tuple(x.shape)}; expected (N,F) feature vectors or (N,H,W), (N,C,H,W), "
                      "(N,H,W,C) images")


def _labels(raw: np.ndarray, classes: list[str] | None, what: str) -> np.ndarray:
    """Class indices (int64) from integer labels, or from string labels via `classes`."""
    if classes is not None:
        index = {c: i for i, c in enumerate(classes)}
        return np.array([index[str(v)] for v in raw], dtype=np.int64)
    if raw.dtype.kind == "f" and np.isfinite(raw).all() and (raw == np.round(raw)).all():
        raw = raw.astype(np.int64)  # 0.0, 1.0, ... saved as floats
    if raw.dtype.kind not in "iub":
        raise EdgeKDError(f"{what} must hold class indices (integers 0..K-1) or class names; got dtype {raw.dtype}")
    if raw.size and raw.min() < 0:
        raise EdgeKDError(f"{what} holds negative labels ({int(raw.min())}); want class indices 0..K-1")
    return raw.astype(np.int64)


def _npz(path: Path, seed: int, need_labels: bool = True):
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for a corrupt file
        raise EdgeKDError(f"data file {path} is not a readable .npz archive (truncated, or another format: "
                          f"{one_line(exc, 80)})") from None
    if "x" not in z or ("y" not in z and need_labels):
        raise EdgeKDError(f"{path} must hold arrays 'x' and 'y' (and optionally 'x_test', 'y_test'); found {list(z.keys())}")
    try:
        if "y" not in z:
            return _npz_unlabeled(path, z, seed)
        return _npz_arrays(path, z, seed)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:  # a member cut short inside a valid-looking archive
        raise npz_member_error(f"data file {path}", exc) from None


def npz_member_error(what: str, exc: Exception) -> EdgeKDError:
    """Why an array of an .npz could not be read, in one line: an object array, or a member cut short."""
    if "allow_pickle" in str(exc):  # an object array: loading it would unpickle, i.e. may run code
        return EdgeKDError(f"{what} holds object (pickled) arrays, which edgekd does not load; save numeric "
                           "arrays (np.savez(path, x=x.astype('float32'), y=y))")
    return EdgeKDError(f"{what} is not a readable .npz archive (truncated: {one_line(exc, 80)})")


def _check_npz_splits(path: Path, x_train: np.ndarray, x_test: np.ndarray) -> None:
    if x_test.shape[1:] != x_train.shape[1:]:
        raise EdgeKDError(f"{path.name}: x samples are {tuple(x_train.shape[1:])} but x_test samples are "
                          f"{tuple(x_test.shape[1:])}")
    for arr, what in ((x_train, "x"), (x_test, "x_test")):
        if not np.isfinite(arr).all():
            raise EdgeKDError(f"{path.name}:{what} holds NaN or infinite values")
    if len(x_train) == 0 or len(x_test) == 0:
        raise EdgeKDError(f"data file {path}: {'x' if len(x_train) == 0 else 'x_test'} holds no samples")


def _npz_unlabeled(path: Path, z, seed: int):
    """x (and optionally x_test) without labels: for calibration and agreement with the float model."""
    x = _as_samples(z["x"], f"{path.name}:x")
    if len(x) == 0:
        raise EdgeKDError(f"data file {path}: x holds no samples")
    given = "x_test" in z
    if given:
        train, test = (x, None), (_as_samples(z["x_test"], f"{path.name}:x_test"), None)
    else:
        train, test = _hold_out_fifth(x, None, seed)
    _check_npz_splits(path, train[0], test[0])
    src = {"path": str(path), "sha256": sha256_file(path), "test_split": "given" if given else "held out",
           "labelled": False}
    return train, test, 0, src


def _npz_arrays(path: Path, z, seed: int):
    x = _as_samples(z["x"], f"{path.name}:x")
    if len(x) == 0:
        raise EdgeKDError(f"data file {path}: x holds no samples")
    y_stored = z["y"]  # each z[...] reads (and decompresses) the member again
    if y_stored.ndim > 1 and y_stored.size != len(y_stored):  # one-hot or per-pixel labels: not one class per sample
        raise EdgeKDError(f"{path.name}:y has shape {tuple(y_stored.shape)}; want one class index per sample, shape (N,)"
                          " (one-hot labels: save y.argmax(1))")
    raw_y = y_stored.reshape(-1)
    raw_test = z["y_test"].reshape(-1) if "x_test" in z and "y_test" in z else None
    # string labels become class indices in sorted order (like an image folder's sub-folder names)
    classes = None
    if raw_y.dtype.kind in "US":
        classes = sorted({str(v) for v in raw_y} | ({str(v) for v in raw_test} if raw_test is not None else set()))
    y = _labels(raw_y, classes, f"{path.name}:y")
    if len(x) != len(y):
        raise EdgeKDError(f"{path.name}: x has {len(x)} samples but y has {len(y)}")
    if raw_test is not None:
        test = (_as_samples(z["x_test"], f"{path.name}:x_test"), _labels(raw_test, classes, f"{path.name}:y_test"))
        train = (x, y)
    else:
        train, test = _hold_out_fifth(x, y, seed)
    _check_npz_splits(path, train[0], test[0])
    k = len(classes) if classes else int(max(train[1].max(), test[1].max())) + 1
    if len(np.unique(np.concatenate([train[1], test[1]]))) < 2:
        raise EdgeKDError(f"data file {path}: y has a single class; a classifier needs at least 2 classes")
    src = {"path": str(path), "sha256": sha256_file(path), "test_split": "given" if raw_test is not None else "held out",
           "labelled": True}
    if classes:
        src["classes"] = classes
    return train, test, k, src
