"""Image data for proxy training: Fashion-MNIST from Debian's package, a user's folder or .npz
arrays, or a generated learnable set.  Nothing is downloaded.

Every source yields uint8 tensors (N, C, H, W) at the requested resolution and a fixed,
seeded, class-stratified choice of images in three disjoint parts:

* **validation** — what the search selects on.  Held out from the training split (Fashion-MNIST,
  and folders or arrays without a validation part of their own), chosen first, so it is
  disjoint from every training subset of any size drawn from the rest;
* **training** — a stratified subset of what remains;
* **test** — the source's own test part (Fashion-MNIST's official test split, ``test/``,
  ``x_test``), used whole, evaluated only for the candidates a study confirms and never used to
  select; a source without one has no test figure.

Every candidate of a study trains, validates and tests on exactly the same images.
"""

from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ulsam_nas.errors import InvalidInput

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
DATA_ENV = "ULSAM_NAS_DATA"
APT_COMMAND = "apt-get install -y dataset-fashion-mnist"
FASHION_MNIST_CLASSES = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
SYNTHETIC_TRAIN, SYNTHETIC_VAL, SYNTHETIC_TEST = 512, 256, 256
HELD_OUT_FRACTION = 5  # without a validation count: one fifth of the training part is held out
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class ImageData:
    name: str
    train_images: torch.Tensor  # uint8 (N, C, H, W)
    train_labels: torch.Tensor  # int64 (N,)
    val_images: torch.Tensor
    val_labels: torch.Tensor
    classes: tuple[str, ...]
    validation_from: str = "training split"  # where the validation images come from
    test_images: torch.Tensor | None = None  # None: the source has no test part
    test_labels: torch.Tensor | None = None
    test_from: str | None = None

    @property
    def in_channels(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def resolution(self) -> int:
        return int(self.train_images.shape[2])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def test_count(self) -> int:
        return 0 if self.test_labels is None else len(self.test_labels)

    def split(self) -> dict[str, int | str | None]:
        """How the images are split (what ``--dry-run --json`` and a study's attributes state)."""
        return {
            "train_images": len(self.train_labels),
            "validation_images": len(self.val_labels),
            "validation_from": self.validation_from,
            "test_images": self.test_count,
            "test_from": self.test_from,
        }

    def describe(self) -> str:
        test = (
            f", {self.test_count:,} test images ({self.test_from})" if self.test_count else ", no test part"
        )
        return (
            f"{self.name}: {len(self.train_labels):,} training and {len(self.val_labels):,} validation "
            f"images (from the {self.validation_from}){test}, "
            f"{self.in_channels}×{self.resolution}×{self.resolution}, {self.num_classes} classes"
        )


def stratified_indices(labels: np.ndarray, count: int | None, seed: int) -> np.ndarray:
    """``count`` indices with the classes as balanced as the data allows (all when None)."""
    if count is None or count >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = {c: rng.permutation(np.flatnonzero(labels == c)) for c in classes}
    base, extra = divmod(count, len(classes))
    chosen = [per_class[c][: base + (1 if i < extra else 0)] for i, c in enumerate(classes)]
    return np.sort(np.concatenate(chosen))


def held_out_split(
    labels: np.ndarray, train: int | None, val: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validation indices chosen first from ``labels`` (stratified; ``val`` None: one fifth), then
    training indices from the rest, so the validation images are the same, and disjoint from
    the training ones, whatever the training count."""
    count = max(1, len(labels) // HELD_OUT_FRACTION) if val is None else val
    if count >= len(labels):
        raise InvalidInput(
            f"val_images={count} leaves no training images of the {len(labels):,} in the training part; "
            f"allowed: 1..{len(labels) - 1}"
        )
    held = stratified_indices(labels, count, seed)
    rest = np.setdiff1d(np.arange(len(labels)), held)
    return rest[stratified_indices(labels[rest], train, seed)], held


def _fit(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Zero-pad (when it is at most 4 pixels a side, e.g. Fashion-MNIST's 28 → 32) or resize."""
    size = images.shape[-1]
    if size == resolution and images.shape[-2] == resolution:
        return images
    grow = resolution - size
    if images.shape[-2] == size and 0 < grow <= 8 and grow % 2 == 0:
        return F.pad(images, (grow // 2,) * 4)
    resized = F.interpolate(
        images.float(), size=(resolution, resolution), mode="bilinear", align_corners=False
    )
    return resized.round().clamp(0, 255).to(torch.uint8)


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        return np.frombuffer(handle.read(), dtype=np.uint8, offset=offset)


def fashion_mnist_dir() -> Path:
    return Path(os.environ.get(DATA_ENV, str(FASHION_MNIST_DIR)))


def load_fashion_mnist(train: int | None, val: int | None, resolution: int, seed: int) -> ImageData:
    root = fashion_mnist_dir()
    files = {
        "train_x": "train-images-idx3-ubyte.gz",
        "train_y": "train-labels-idx1-ubyte.gz",
        "test_x": "t10k-images-idx3-ubyte.gz",
        "test_y": "t10k-labels-idx1-ubyte.gz",
    }
    missing = [name for name in files.values() if not (root / name).is_file()]
    if missing:
        raise InvalidInput(
            f"Fashion-MNIST not found in {root} (missing {missing[0]}); install it with "
            f"'{APT_COMMAND}', or give --data PATH or {DATA_ENV}"
        )
    train_y = _read_idx(root / files["train_y"], 8).astype(np.int64)
    test_y = _read_idx(root / files["test_y"], 8).astype(np.int64)
    train_x = _read_idx(root / files["train_x"], 16).reshape(-1, 1, 28, 28)
    test_x = _read_idx(root / files["test_x"], 16).reshape(-1, 1, 28, 28)
    # Validation is held out of the training split; the official test split is the test part.
    ti, vi = held_out_split(train_y, train, val, seed)
    return ImageData(
        "fashion-mnist",
        _fit(torch.from_numpy(train_x[ti].copy()), resolution),
        torch.from_numpy(train_y[ti]),
        _fit(torch.from_numpy(train_x[vi].copy()), resolution),
        torch.from_numpy(train_y[vi]),
        FASHION_MNIST_CLASSES,
        "training split",
        _fit(torch.from_numpy(test_x.copy()), resolution),
        torch.from_numpy(test_y),
        "official test split",
    )


def synthetic(train: int | None, val: int | None, resolution: int, seed: int, classes: int = 10) -> ImageData:
    """A generated, learnable RGB set: each class is an oriented colour grating of its own
    frequency, with random phase, contrast and noise (chance accuracy 1/classes)."""
    train = SYNTHETIC_TRAIN if train is None else train
    val = SYNTHETIC_VAL if val is None else val
    generator = torch.Generator().manual_seed(seed)

    def make(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(count) % classes
        labels = labels[torch.randperm(count, generator=generator)]
        angle = labels.float() * math.pi / classes
        frequency = 2.0 + (labels % 3).float() * 1.5
        phase = torch.rand(count, generator=generator) * 2 * math.pi
        axis = torch.linspace(0, 1, resolution)
        yy, xx = torch.meshgrid(axis, axis, indexing="ij")
        along = xx[None] * torch.cos(angle)[:, None, None] + yy[None] * torch.sin(angle)[:, None, None]
        wave = torch.sin(2 * math.pi * frequency[:, None, None] * along + phase[:, None, None])
        hue = labels.float()[:, None] / classes * 2 * math.pi + torch.tensor([0.0, 2.1, 4.2])[None]
        colour = 0.5 + 0.4 * torch.cos(hue)
        contrast = 0.5 + 0.5 * torch.rand(count, 1, 1, 1, generator=generator)
        image = 0.5 + contrast * colour[:, :, None, None] * wave[:, None] * 0.5
        image = image + 0.15 * torch.randn(count, 3, resolution, resolution, generator=generator)
        return (image.clamp(0, 1) * 255).round().to(torch.uint8), labels

    train_x, train_y = make(train)
    val_x, val_y = make(val)
    test_x, test_y = make(SYNTHETIC_TEST)
    names = tuple(f"class {i}" for i in range(classes))
    return ImageData(
        "synthetic", train_x, train_y, val_x, val_y, names, "generated set", test_x, test_y, "generated set"
    )


def load_npz(path: Path, train: int | None, val: int | None, resolution: int, seed: int) -> ImageData:
    """Arrays ``x_train, y_train``, optionally ``x_val, y_val`` (else validation is held out of
    the training arrays) and ``x_test, y_test`` (the test part; else there is none); images uint8
    as NHWC, NCHW or NHW."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            content = {k: arrays[k] for k in arrays.files}
    except (OSError, ValueError) as error:
        raise InvalidInput(f"cannot read {path} as .npz arrays: {error}") from None
    for key in ("x_train", "y_train"):
        if key not in content:
            raise InvalidInput(f"{path} has no array {key!r}; expected x_train, y_train (and x_val, y_val)")
    parts = {
        part: (_nchw(content[f"x_{part}"], path), content[f"y_{part}"].astype(np.int64))
        for part in ("train", "val", "test")
        if f"x_{part}" in content and f"y_{part}" in content
    }
    return _assemble(path.stem, parts, None, train, val, resolution, seed, "arrays")


def _nchw(array: np.ndarray, path: Path) -> np.ndarray:
    if array.dtype != np.uint8:
        raise InvalidInput(f"{path}: images must be uint8, got {array.dtype}")
    if array.ndim == 3:
        return array[:, None]
    if array.ndim == 4 and array.shape[-1] in (1, 3) and array.shape[1] not in (1, 3):
        return np.ascontiguousarray(array.transpose(0, 3, 1, 2))
    if array.ndim == 4:
        return array
    raise InvalidInput(f"{path}: images must have 3 or 4 dimensions, got shape {array.shape}")


Part = tuple[np.ndarray, np.ndarray]  # images (N, C, H, W) uint8, labels (N,)


def _assemble(
    name: str,
    parts: dict[str, Part],
    classes: tuple[str, ...] | None,
    train: int | None,
    val: int | None,
    resolution: int,
    seed: int,
    kind: str,
) -> ImageData:
    """The three parts from a source's ``train`` and optional ``val`` and ``test`` parts
    (``kind``: "arrays" or "folders", for saying where each part came from)."""
    x, y = parts["train"]
    if "val" in parts:
        vx, vy = parts["val"]
        ti, vi = stratified_indices(y, train, seed), stratified_indices(vy, val, seed)
        validation_from = "x_val, y_val arrays" if kind == "arrays" else "val/ folder"
    else:
        ti, vi = held_out_split(y, train, val, seed)
        vx, vy = x, y
        validation_from = "training " + kind
    labels = [y, vy] + ([parts["test"][1]] if "test" in parts else [])
    count = int(max(part.max() for part in labels)) + 1

    def tensor(images: np.ndarray) -> torch.Tensor:
        return _fit(torch.from_numpy(np.ascontiguousarray(images)), resolution)

    test = parts.get("test")
    return ImageData(
        name,
        tensor(x[ti]),
        torch.from_numpy(y[ti]),
        tensor(vx[vi]),
        torch.from_numpy(vy[vi]),
        classes or tuple(str(i) for i in range(count)),
        validation_from,
        None if test is None else tensor(test[0]),
        None if test is None else torch.from_numpy(test[1]),
        None if test is None else ("x_test, y_test arrays" if kind == "arrays" else "test/ folder"),
    )


def load_image_folder(
    root: Path, train: int | None, val: int | None, resolution: int, seed: int
) -> ImageData:
    """ImageFolder layout ``root/<class>/<image>``, or ``root/train/<class>/`` with optional
    ``root/val/`` and ``root/test/`` beside it, decoded with PIL to RGB at ``resolution``;
    without val/ the validation images are held out of the training images."""
    from PIL import Image

    def read(folder: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        images, labels = [], []
        for label, name in enumerate(classes):
            for path in sorted((folder / name).rglob("*")):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    with Image.open(path) as image:
                        rgb = image.convert("RGB").resize((resolution, resolution), Image.Resampling.BILINEAR)
                    images.append(np.asarray(rgb).transpose(2, 0, 1))
                    labels.append(label)
        if not images:
            raise InvalidInput(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
        return np.stack(images), np.asarray(labels, dtype=np.int64)

    base = root / "train" if (root / "train").is_dir() else root
    classes = sorted(entry.name for entry in base.iterdir() if entry.is_dir())
    if len(classes) < 2:
        raise InvalidInput(f"{base} needs one folder per class (at least 2), found {len(classes)}")
    parts = {"train": read(base, classes)}
    if base != root:
        parts |= {part: read(root / part, classes) for part in ("val", "test") if (root / part).is_dir()}
    return _assemble(root.name, parts, tuple(classes), train, val, resolution, seed, "folders")


FASHION_MNIST_SIZES = {"train": 60_000, "test": 10_000}


@dataclass(frozen=True)
class DataShape:
    """What a source gives a network and how its images split, read without decoding images
    (``search --dry-run`` needs no data set installed)."""

    in_channels: int
    num_classes: int
    split: dict[str, int | str | None]
    installed: bool = True


def describe_source(source: str, train: int | None, val: int | None, seed: int = 0) -> DataShape:
    """Channels, classes and the split of ``source`` without loading its images (a .npz file is
    read; image files are counted, not decoded)."""
    if source == "synthetic":
        split = _split(
            train or SYNTHETIC_TRAIN, val or SYNTHETIC_VAL, "generated set", SYNTHETIC_TEST, "generated set"
        )
        return DataShape(3, 10, split)
    if source == "fashion-mnist":
        installed = (fashion_mnist_dir() / "train-images-idx3-ubyte.gz").is_file()
        pool = FASHION_MNIST_SIZES["train"]
        held = max(1, pool // HELD_OUT_FRACTION) if val is None else val
        split = _split(
            min(train or pool, pool - held),
            held,
            "training split",
            FASHION_MNIST_SIZES["test"],
            "official test split",
        )
        return DataShape(1, len(FASHION_MNIST_CLASSES), split, installed)
    path = Path(source)
    if path.is_dir() or (path.suffix == ".npz" and path.is_file()):
        data = (
            load_data(source, train, val, 8, seed)
            if path.suffix == ".npz"
            else _folder_shape(path, train, val)
        )
        if isinstance(data, DataShape):
            return data
        return DataShape(data.in_channels, data.num_classes, data.split())
    raise InvalidInput(
        f"data {source!r} is not available; allowed: synthetic, fashion-mnist ('{APT_COMMAND}'), "
        "an image folder or a .npz file"
    )


def _split(
    train: int, val: int, val_from: str, test: int, test_from: str | None
) -> dict[str, int | str | None]:
    return {
        "train_images": train,
        "validation_images": val,
        "validation_from": val_from,
        "test_images": test,
        "test_from": test_from if test else None,
    }


def _folder_shape(root: Path, train: int | None, val: int | None) -> DataShape:
    def count(folder: Path) -> int:
        return sum(1 for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)

    base = root / "train" if (root / "train").is_dir() else root
    classes = [entry for entry in base.iterdir() if entry.is_dir()]
    pool = count(base)
    if base != root and (root / "val").is_dir():
        held, val_from = min(val or count(root / "val"), count(root / "val")), "val/ folder"
    else:
        held, val_from = (max(1, pool // HELD_OUT_FRACTION) if val is None else val), "training folders"
        pool -= held
    test = count(root / "test") if base != root and (root / "test").is_dir() else 0
    return DataShape(3, len(classes), _split(min(train or pool, pool), held, val_from, test, "test/ folder"))


def load_data(
    source: str, train: int | None = None, val: int | None = None, resolution: int = 32, seed: int = 0
) -> ImageData:
    """``source``: "fashion-mnist", "synthetic", a folder (ImageFolder layout) or a .npz file."""
    if source == "synthetic":
        return synthetic(train, val, resolution, seed)
    if source == "fashion-mnist":
        return load_fashion_mnist(train, val, resolution, seed)
    path = Path(source)
    if path.is_dir():
        return load_image_folder(path, train, val, resolution, seed)
    if path.suffix == ".npz" and path.is_file():
        return load_npz(path, train, val, resolution, seed)
    raise InvalidInput(
        f"data {source!r} is not available; allowed: synthetic, fashion-mnist ('{APT_COMMAND}'), "
        "an image folder or a .npz file"
    )
