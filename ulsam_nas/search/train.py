"""Proxy training: a short, deterministic SGD run of one candidate, scored by validation top-1.

Protocol (shared/design/proxy-signal.md): SGD with momentum 0.9, weight decay 5e-4, cosine
learning rate per step from ``lr`` to 0, batch 128 with ``drop_last`` (ULSAM's BatchNorm
momentum of 0.9 would otherwise take its running statistics from a tiny last batch), images
scaled to [0, 1] and normalized by the training set's per-channel mean and std, no
augmentation.  ``seed`` fixes the initialization (seeded before the model is built) and the
batch order (a generator seeded 1000 + seed), so candidates trained with the same seed see the
same batches: differences between them are paired.  Denormal floats are flushed: without it a
CPU epoch can run 10× slower once weights get tiny.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ulsam_nas.errors import InvalidInput
from ulsam_nas.search.data import ImageData

LATENCY_REPEATS = 20


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 2
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    device: str = "cpu"
    eval_batch_size: int = 512

    def validate(self, train_images: int) -> None:
        if self.epochs < 1:
            raise InvalidInput(f"epochs={self.epochs} is invalid; allowed: a positive integer")
        if not 1 <= self.batch_size <= train_images:
            raise InvalidInput(
                f"batch_size={self.batch_size} is invalid for {train_images} training images; "
                f"allowed: 1..{train_images}"
            )


@dataclass
class TrainResult:
    accuracy: float  # validation top-1 in [0, 1]
    trained_steps: int
    train_seconds: float
    images_per_second: float
    latency_ms: float  # median forward time of one image on the device used
    epoch_losses: list[float] = field(default_factory=list)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidInput("device='cuda' but no CUDA device is available; allowed: cpu, auto")
    if device not in ("cpu", "cuda"):
        raise InvalidInput(f"device={device!r} is unknown; allowed: cpu, cuda, auto")
    return torch.device(device)


def _normalizer(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scaled = images.float() / 255
    mean = scaled.mean(dim=(0, 2, 3), keepdim=True)
    std = scaled.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)
    return mean, std


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    batch_size: int,
    device: torch.device,
) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(labels), batch_size):
        x = ((images[start : start + batch_size].to(device).float() / 255) - mean) / std
        correct += int((model(x).argmax(1) == labels[start : start + batch_size].to(device)).sum())
    return correct / len(labels)


@torch.no_grad()
def measure_latency_ms(model: nn.Module, example: torch.Tensor, repeats: int = LATENCY_REPEATS) -> float:
    """Median wall time of a one-image forward pass in eval mode (after two warm-up passes)."""
    model.eval()
    times = []
    for i in range(repeats + 2):
        if example.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(example)
        if example.is_cuda:
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def denormals_flushed() -> bool:
    """Whether this process currently flushes denormal floats to zero."""
    return (torch.tensor([1e-39]) * torch.tensor([1.0])).item() == 0.0


@contextlib.contextmanager
def flushing_denormals() -> Iterator[None]:
    """Flush denormals while training (a CPU epoch can run 10× slower without it), then restore
    the process's previous setting: it is global floating-point state that other code relies on."""
    before = denormals_flushed()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


def proxy_train(
    build: Callable[[], nn.Module],
    data: ImageData,
    settings: TrainSettings,
    seed: int,
    on_epoch: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Build (after seeding) and train one candidate; ``on_epoch(epoch, accuracy)`` is called after
    each epoch when given (it may raise, e.g. optuna.TrialPruned, to stop the run)."""
    settings.validate(len(data.train_labels))
    with flushing_denormals():
        return _train(build, data, settings, seed, on_epoch)


def _train(
    build: Callable[[], nn.Module],
    data: ImageData,
    settings: TrainSettings,
    seed: int,
    on_epoch: Callable[[int, float], None] | None,
) -> TrainResult:
    device = resolve_device(settings.device)
    torch.manual_seed(seed)
    model = build().to(device)
    order = torch.Generator().manual_seed(1000 + seed)
    mean, std = (t.to(device) for t in _normalizer(data.train_images))
    steps_per_epoch = len(data.train_labels) // settings.batch_size
    total_steps = steps_per_epoch * settings.epochs
    optimizer = torch.optim.SGD(
        model.parameters(), lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )
    images, labels = data.train_images.to(device), data.train_labels.to(device)
    losses, steps = [], 0
    start = time.perf_counter()
    for epoch in range(settings.epochs):
        model.train()
        permutation = torch.randperm(len(labels), generator=order).to(device)
        running = 0.0
        for step in range(steps_per_epoch):
            batch = permutation[step * settings.batch_size : (step + 1) * settings.batch_size]
            x = ((images[batch].float() / 255) - mean) / std
            loss = F.cross_entropy(model(x), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            running += loss.detach().item()
            steps += 1
        losses.append(running / steps_per_epoch)
        if on_epoch is not None and epoch + 1 < settings.epochs:
            on_epoch(
                epoch + 1,
                evaluate(
                    model, data.val_images, data.val_labels, mean, std, settings.eval_batch_size, device
                ),
            )
    train_seconds = time.perf_counter() - start
    accuracy = evaluate(model, data.val_images, data.val_labels, mean, std, settings.eval_batch_size, device)
    if on_epoch is not None:
        on_epoch(settings.epochs, accuracy)
    example = ((data.val_images[:1].to(device).float() / 255) - mean) / std
    return TrainResult(
        accuracy=accuracy,
        trained_steps=steps,
        train_seconds=train_seconds,
        images_per_second=steps * settings.batch_size / train_seconds if train_seconds > 0 else 0.0,
        latency_ms=measure_latency_ms(model, example),
        epoch_losses=losses,
    )
