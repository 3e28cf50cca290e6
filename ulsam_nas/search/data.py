"""Image data for proxy training: Fashion-MNIST from Debian's package, a user's folder or .npz
arrays, or a generated learnable set.  Nothing is downloaded.

Every source yields uint8 tensors (N, C, H, W) at the requested resolution and a fixed,
seeded, class-stratified choice of training and validation images, so every candidate of a
study trains and validates on exactly the same images.
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
SYNTHETIC_TRAIN, SYNTHETIC_VAL = 512, 256
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class ImageData:
    name: str
    train_images: torch.Tensor  # uint8 (N, C, H, W)
    train_labels: torch.Tensor  # int64 (N,)
    val_images: torch.Tensor
    val_labels: torch.Tensor
    classes: tuple[str, ...]

    @property
    def in_channels(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def resolution(self) -> int:
        return int(self.train_images.shape[2])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def describe(self) -> str:
        return (
            f"{self.name}: {len(self.train_labels):,} training and {len(self.val_labels):,} validation "
            f"images, {self.in_channels}×{self.resolution}×{self.resolution}, {self.num_classes} classes"
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
        "val_x": "t10k-images-idx3-ubyte.gz",
        "val_y": "t10k-labels-idx1-ubyte.gz",
    }
    missing = [name for name in files.values() if not (root / name).is_file()]
    if missing:
        raise InvalidInput(
            f"Fashion-MNIST not found in {root} (missing {missing[0]}); install it with "
            f"'{APT_COMMAND}', or give --data PATH or {DATA_ENV}"
        )
    train_y = _read_idx(root / files["train_y"], 8).astype(np.int64)
    val_y = _read_idx(root / files["val_y"], 8).astype(np.int64)
    train_x = _read_idx(root / files["train_x"], 16).reshape(-1, 1, 28, 28)
    val_x = _read_idx(root / files["val_x"], 16).reshape(-1, 1, 28, 28)
    # Training images come from the training split, validation images from the official test split.
    ti, vi = stratified_indices(train_y, train, seed), stratified_indices(val_y, val, seed)
    return ImageData(
        "fashion-mnist",
        _fit(torch.from_numpy(train_x[ti].copy()), resolution),
        torch.from_numpy(train_y[ti]),
        _fit(torch.from_numpy(val_x[vi].copy()), resolution),
        torch.from_numpy(val_y[vi]),
        FASHION_MNIST_CLASSES,
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
    return ImageData("synthetic", train_x, train_y, val_x, val_y, tuple(f"class {i}" for i in range(classes)))


def load_npz(path: Path, train: int | None, val: int | None, resolution: int, seed: int) -> ImageData:
    """Arrays ``x_train, y_train`` and optionally ``x_val, y_val`` (else a seeded 20% split);
    images uint8 as NHWC, NCHW or NHW."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            content = {k: arrays[k] for k in arrays.files}
    except (OSError, ValueError) as error:
        raise InvalidInput(f"cannot read {path} as .npz arrays: {error}") from None
    for key in ("x_train", "y_train"):
        if key not in content:
            raise InvalidInput(f"{path} has no array {key!r}; expected x_train, y_train (and x_val, y_val)")
    x, y = _nchw(content["x_train"], path), content["y_train"].astype(np.int64)
    if "x_val" in content and "y_val" in content:
        vx, vy = _nchw(content["x_val"], path), content["y_val"].astype(np.int64)
    else:
        held = stratified_indices(y, max(1, len(y) // 5), seed + 1)
        rest = np.setdiff1d(np.arange(len(y)), held)
        x, y, vx, vy = x[rest], y[rest], x[held], y[held]
    return _assemble(path.stem, x, y, vx, vy, None, train, val, resolution, seed)


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


def _assemble(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    vx: np.ndarray,
    vy: np.ndarray,
    classes: tuple[str, ...] | None,
    train: int | None,
    val: int | None,
    resolution: int,
    seed: int,
) -> ImageData:
    ti, vi = stratified_indices(y, train, seed), stratified_indices(vy, val, seed)
    count = int(max(y.max(), vy.max())) + 1
    return ImageData(
        name,
        _fit(torch.from_numpy(np.ascontiguousarray(x[ti])), resolution),
        torch.from_numpy(y[ti]),
        _fit(torch.from_numpy(np.ascontiguousarray(vx[vi])), resolution),
        torch.from_numpy(vy[vi]),
        classes or tuple(str(i) for i in range(count)),
    )


def load_image_folder(
    root: Path, train: int | None, val: int | None, resolution: int, seed: int
) -> ImageData:
    """ImageFolder layout ``root/<class>/<image>`` (or ``root/train/<class>`` and ``root/val/<class>``),
    decoded with PIL to RGB at ``resolution``; without val/ a seeded stratified 20% is held out."""
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

    split = (root / "train").is_dir() and (root / "val").is_dir()
    base = root / "train" if split else root
    classes = sorted(entry.name for entry in base.iterdir() if entry.is_dir())
    if len(classes) < 2:
        raise InvalidInput(f"{base} needs one folder per class (at least 2), found {len(classes)}")
    x, y = read(base, classes)
    if split:
        vx, vy = read(root / "val", classes)
    else:
        held = stratified_indices(y, max(1, len(y) // 5), seed + 1)
        rest = np.setdiff1d(np.arange(len(y)), held)
        x, y, vx, vy = x[rest], y[rest], x[held], y[held]
    return _assemble(root.name, x, y, vx, vy, tuple(classes), train, val, resolution, seed)


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
