"""Proxy training: a short, deterministic run of one candidate, scored by validation top-1.

The recipe (``TrainSettings``; the study file's ``proxy`` section) was chosen by measurement,
not habit (benchmarks/proxy.py; README, "The proxy's recipe"): SGD with momentum (optionally
Nesterov) or AdamW, a linear warm-up over the first ``warmup`` fraction of the steps to the peak
``lr``, then a cosine decay to 0, per step; weight decay; optional label smoothing and an
exponential moving average of the weights; batch ``batch_size`` with ``drop_last`` (ULSAM's
BatchNorm momentum of 0.9 would otherwise take its running statistics from a tiny last batch);
images scaled to [0, 1] and normalized by the training set's per-channel mean and std; no
augmentation.  *Precise BatchNorm*: before every evaluation the running statistics of every
BatchNorm layer are recomputed as a plain average over ``precise_bn`` training images (full
batches, train mode, no gradients), so an evaluation never depends on the last few batches'
statistics (with a high learning rate they can be far off; ULSAM's momentum-0.9 BatchNorm keeps
roughly the last batch's).

``seed`` fixes the initialization (seeded before the model is built) and the batch order (a
generator seeded 1000 + seed), so candidates trained with the same seed see the same batches:
differences between them are paired.  Denormal floats are flushed: without it a CPU epoch can
run 10× slower once weights get tiny.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ulsam_nas.errors import InvalidInput
from ulsam_nas.search.data import ImageData

LATENCY_REPEATS = 20


OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 2
    batch_size: int = 128
    lr: float = 0.05  # the peak learning rate
    warmup: float = 0.0  # fraction of the steps warming up linearly to ``lr``
    optimizer: str = "sgd"
    momentum: float = 0.9  # SGD's momentum (AdamW: β1)
    nesterov: bool = False
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    ema: float | None = None  # decay of a moving average of the weights, evaluated instead of them
    precise_bn: int = 0  # training images the BatchNorm statistics are recomputed over; 0: off
    channels_last: bool = False  # NHWC tensors: the same network, faster convolutions on a CPU
    device: str = "cpu"
    eval_batch_size: int = 128  # measured fastest on a 2-core CPU (512: 1.9× slower)

    def validate(self, train_images: int) -> None:
        if self.epochs < 1:
            raise InvalidInput(f"epochs={self.epochs} is invalid; allowed: a positive integer")
        if not 1 <= self.batch_size <= train_images:
            raise InvalidInput(
                f"batch_size={self.batch_size} is invalid for {train_images} training images; "
                f"allowed: 1..{train_images}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise InvalidInput(f"optimizer={self.optimizer!r} is unknown; allowed: {', '.join(OPTIMIZERS)}")
        if not 0 <= self.warmup < 1:
            raise InvalidInput(f"warmup={self.warmup} is invalid; allowed: a fraction in [0, 1)")
        if self.ema is not None and not 0 < self.ema < 1:
            raise InvalidInput(f"ema={self.ema} is invalid; allowed: a decay in (0, 1)")

    def learning_rate_factor(self, total_steps: int) -> Callable[[int], float]:
        """The multiplier of ``lr`` before each step: linear warm-up, then cosine to 0."""
        warm = round(self.warmup * total_steps)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            progress = min(step - warm, total_steps - warm) / max(1, total_steps - warm)
            return 0.5 * (1 + math.cos(math.pi * progress))

        return factor


@dataclass
class TrainResult:
    accuracy: float  # validation top-1 in [0, 1]
    trained_steps: int
    train_seconds: float  # the whole run: building, training, precise BatchNorm, evaluations
    images_per_second: float  # of the training steps alone
    latency_ms: float  # median forward time of one image on the device used
    epoch_losses: list[float] = field(default_factory=list)
    # Which validation images the model got right, one bit each (numpy.packbits order).
    validation_correct: bytes = b""
    test_accuracy: float | None = None  # only when asked for, and the data has a test part


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidInput("device='cuda' but no CUDA device is available; allowed: cpu, auto")
    if device not in ("cpu", "cuda"):
        raise InvalidInput(f"device={device!r} is unknown; allowed: cpu, cuda, auto")
    return torch.device(device)


@dataclass(frozen=True)
class Normalizer:
    """uint8 images → floats scaled to [0, 1] and normalized per channel by the training set's
    mean and std, on the training device, in NCHW or NHWC (``channels_last``) memory format."""

    mean: torch.Tensor
    std: torch.Tensor
    channels_last: bool = False

    @classmethod
    def of(cls, images: torch.Tensor, device: torch.device, channels_last: bool = False) -> Normalizer:
        scaled = images.float() / 255
        mean = scaled.mean(dim=(0, 2, 3), keepdim=True)
        std = scaled.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)
        return cls(mean.to(device), std.to(device), channels_last)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = ((images.to(self.mean.device).float() / 255) - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def in_memory_format(
    model: nn.Module, example: torch.Tensor, channels_last: bool
) -> tuple[nn.Module, torch.Tensor]:
    """The model and an input in NHWC memory format when ``channels_last`` (else unchanged)."""
    if not channels_last:
        return model, example
    return to_channels_last(model), example.contiguous(memory_format=torch.channels_last)


def to_channels_last(model: nn.Module) -> nn.Module:
    return model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


@torch.inference_mode()
def correct_predictions(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    normalize: Normalizer,
    batch_size: int,
) -> torch.Tensor:
    """Whether the model (in eval mode) classifies each image right (bool, on the CPU)."""
    model.eval()
    found = []
    for start in range(0, len(labels), batch_size):
        x = normalize(images[start : start + batch_size])
        found.append(model(x).argmax(1).cpu() == labels[start : start + batch_size])
    return torch.cat(found)


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    normalize: Normalizer,
    batch_size: int,
) -> float:
    return float(correct_predictions(model, images, labels, normalize, batch_size).float().mean())


@torch.no_grad()
def recompute_batch_norm(
    model: nn.Module, images: torch.Tensor, normalize: Normalizer, batch_size: int
) -> None:
    """Precise BatchNorm: every BatchNorm layer's running statistics reset and recomputed as the
    plain average over ``images`` in full batches of ``batch_size`` (train mode, no gradients);
    each layer's momentum is restored afterwards."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    batches = len(images) // batch_size
    if not layers or batches == 0:
        return
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over the batches
    model.train()
    for b in range(batches):
        model(normalize(images[b * batch_size : (b + 1) * batch_size]))
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum


def pack_correct(correct: torch.Tensor) -> bytes:
    """One bit per image (``noise.unpack_correct`` reads it back)."""
    return np.packbits(correct.numpy().astype(np.uint8)).tobytes()


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
    test: bool = False,
) -> TrainResult:
    """Build (after seeding) and train one candidate; ``on_epoch(epoch, accuracy)`` is called after
    each epoch when given (it may raise, e.g. optuna.TrialPruned, to stop the run).  With
    ``test`` the trained model is also scored on the data's test part (if it has one)."""
    settings.validate(len(data.train_labels))
    with flushing_denormals():
        return _train(build, data, settings, seed, on_epoch, test)


def _epochs(
    model: nn.Module,
    average: nn.Module | None,
    data: ImageData,
    normalize: Normalizer,
    order: torch.Generator,
    settings: TrainSettings,
    after_epoch: Callable[[int], None],
) -> tuple[list[float], int]:
    """The training steps (``drop_last`` batches in a seeded order, the learning-rate schedule
    per step, the weight average updated after each); returns the mean loss per epoch and the
    steps taken."""
    device = normalize.mean.device
    images, labels = data.train_images.to(device), data.train_labels.to(device)
    steps_per_epoch = len(labels) // settings.batch_size
    optimizer = _optimizer(model, settings)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, settings.learning_rate_factor(steps_per_epoch * settings.epochs)
    )
    losses, steps = [], 0
    for epoch in range(settings.epochs):
        model.train()
        permutation = torch.randperm(len(labels), generator=order).to(device)
        running = 0.0
        for step in range(steps_per_epoch):
            batch = permutation[step * settings.batch_size : (step + 1) * settings.batch_size]
            loss = F.cross_entropy(
                model(normalize(images[batch])), labels[batch], label_smoothing=settings.label_smoothing
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if average is not None:
                average.update_parameters(model)  # type: ignore[operator]
            running += loss.detach().item()
            steps += 1
        losses.append(running / steps_per_epoch)
        after_epoch(epoch + 1)
    return losses, steps


def _optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(
            model.parameters(),
            lr=settings.lr,
            betas=(settings.momentum, 0.999),
            weight_decay=settings.weight_decay,
        )
    return torch.optim.SGD(
        model.parameters(),
        lr=settings.lr,
        momentum=settings.momentum,
        nesterov=settings.nesterov,
        weight_decay=settings.weight_decay,
    )


def _train(
    build: Callable[[], nn.Module],
    data: ImageData,
    settings: TrainSettings,
    seed: int,
    on_epoch: Callable[[int, float], None] | None,
    test: bool,
) -> TrainResult:
    begin = time.perf_counter()
    device = resolve_device(settings.device)
    torch.manual_seed(seed)
    model = build().to(device)
    if settings.channels_last:
        model = to_channels_last(model)
    order = torch.Generator().manual_seed(1000 + seed)
    normalize = Normalizer.of(data.train_images, device, settings.channels_last)
    average = (
        torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(settings.ema), use_buffers=True
        )
        if settings.ema is not None
        else None
    )
    images = data.train_images.to(device)
    # The images precise BatchNorm averages over: a seeded choice per seed, the same every epoch.
    calibration = images[torch.randperm(len(images), generator=order)[: settings.precise_bn].to(device)]

    def scored() -> nn.Module:
        """The model an evaluation scores: the weights (or their average), statistics recomputed."""
        target = model if average is None else average.module
        if settings.precise_bn:
            recompute_batch_norm(target, calibration, normalize, settings.batch_size)
        return target

    def validation() -> torch.Tensor:
        return correct_predictions(
            scored(), data.val_images, data.val_labels, normalize, settings.eval_batch_size
        )

    def after_epoch(epoch: int) -> None:
        if on_epoch is not None and epoch < settings.epochs:
            on_epoch(epoch, float(validation().float().mean()))

    start = time.perf_counter()
    losses, steps = _epochs(model, average, data, normalize, order, settings, after_epoch)
    loop_seconds = time.perf_counter() - start
    correct = validation()
    accuracy = float(correct.float().mean())
    if on_epoch is not None:
        on_epoch(settings.epochs, accuracy)
    final = model if average is None else average.module  # its statistics recomputed just now
    test_accuracy = None
    if test and data.test_images is not None and data.test_labels is not None:
        test_accuracy = evaluate(
            final, data.test_images, data.test_labels, normalize, settings.eval_batch_size
        )
    example = normalize(data.val_images[:1])
    latency = measure_latency_ms(final, example)
    return TrainResult(
        accuracy=accuracy,
        trained_steps=steps,
        train_seconds=time.perf_counter() - begin,
        images_per_second=steps * settings.batch_size / loop_seconds if loop_seconds > 0 else 0.0,
        latency_ms=latency,
        epoch_losses=losses,
        validation_correct=pack_correct(correct),
        test_accuracy=test_accuracy,
    )
