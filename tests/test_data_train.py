"""Proxy-training data and the training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ulsam_nas import create_network
from ulsam_nas.errors import InvalidInput
from ulsam_nas.search import TrainSettings, load_data, proxy_train
from ulsam_nas.search.data import (
    DATA_ENV,
    describe_source,
    fashion_mnist_dir,
    held_out_split,
    stratified_indices,
)


def test_stratified_indices_balance_classes_and_are_seeded():
    labels = np.repeat(np.arange(10), 100)
    chosen = stratified_indices(labels, 53, seed=3)
    counts = np.bincount(labels[chosen], minlength=10)
    assert len(chosen) == 53 and counts.max() - counts.min() <= 1
    assert np.array_equal(chosen, stratified_indices(labels, 53, seed=3))
    assert not np.array_equal(chosen, stratified_indices(labels, 53, seed=4))


def test_synthetic_data_is_deterministic_and_sized():
    a, b = load_data("synthetic", seed=1), load_data("synthetic", seed=1)
    assert a.describe() == (
        "synthetic: 512 training and 256 validation images (from the generated set), "
        "256 test images (generated set), 3×32×32, 10 classes"
    )
    assert torch.equal(a.train_images, b.train_images) and a.train_images.dtype == torch.uint8
    assert load_data("synthetic", train=100, val=40, resolution=24).train_images.shape == (100, 3, 24, 24)


def test_validation_is_held_out_first_so_every_training_subset_is_disjoint_from_it():
    labels = np.repeat(np.arange(10), 300)
    train_small, held = held_out_split(labels, 500, 1000, seed=0)
    train_large, held_again = held_out_split(labels, 1500, 1000, seed=0)
    train_all, held_all = held_out_split(labels, None, 1000, seed=0)
    assert np.array_equal(held, held_again) and np.array_equal(held, held_all)
    for train in (train_small, train_large, train_all):
        assert not set(train) & set(held)
    assert len(train_all) == 2000 and np.bincount(labels[held]).tolist() == [100] * 10
    with pytest.raises(InvalidInput, match="val_images=3000 leaves no training images"):
        held_out_split(labels, None, 3000, seed=0)


def test_test_parts_come_only_from_a_source_s_own_test_images(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (60, 28, 28), dtype=np.uint8)
    y = np.arange(60) % 3
    np.savez(tmp_path / "plain.npz", x_train=x, y_train=y)
    np.savez(tmp_path / "tested.npz", x_train=x, y_train=y, x_test=x[:9], y_test=y[:9])
    plain = load_data(str(tmp_path / "plain.npz"), resolution=28)
    assert (
        plain.test_images is None and plain.split()["test_images"] == 0 and "no test part" in plain.describe()
    )
    assert plain.validation_from == "training arrays" and len(plain.val_labels) == 12
    tested = load_data(str(tmp_path / "tested.npz"), resolution=28)
    assert tested.test_count == 9 and tested.test_from == "x_test, y_test arrays"
    for part in ("train", "val", "test"):
        for label in ("cat", "dog"):
            (tmp_path / "imgs" / part / label).mkdir(parents=True)
            for i in range(4):
                Image.fromarray(x[i]).save(tmp_path / "imgs" / part / label / f"{i}.png")
    folder = load_data(str(tmp_path / "imgs"), resolution=16)
    assert folder.validation_from == "val/ folder" and folder.test_from == "test/ folder"
    assert (len(folder.train_labels), len(folder.val_labels), folder.test_count) == (8, 8, 8)
    shape = describe_source(str(tmp_path / "imgs"), None, None)
    assert (shape.in_channels, shape.num_classes) == (3, 2) and shape.split["test_images"] == 8


def test_npz_and_image_folder_sources(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (60, 28, 28, 3), dtype=np.uint8)
    y = np.arange(60) % 3
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y)
    data = load_data(str(tmp_path / "d.npz"), resolution=32)
    assert data.in_channels == 3 and data.resolution == 32 and len(data.val_labels) == 12
    for label in ("cat", "dog"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(x[i]).save(tmp_path / "imgs" / label / f"{i}.png")
    folder = load_data(str(tmp_path / "imgs"), resolution=16)
    assert folder.classes == ("cat", "dog") and folder.train_images.shape[1:] == (3, 16, 16)
    assert len(folder.train_labels) + len(folder.val_labels) == 10


def test_missing_data_names_the_apt_command(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(InvalidInput, match="apt-get install -y dataset-fashion-mnist"):
        load_data("fashion-mnist")
    with pytest.raises(InvalidInput, match="not available"):
        load_data(str(tmp_path / "nothing.npz"))


@pytest.mark.skipif(
    not (fashion_mnist_dir() / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (.ci/run installs it)",
)
def test_real_fashion_mnist_loads_balanced_and_padded():
    data = load_data("fashion-mnist", train=1000, val=500, resolution=32, seed=0)
    assert data.train_images.shape == (1000, 1, 32, 32)
    assert data.train_labels.bincount().tolist() == [100] * 10
    assert data.train_images[:, :, :2].max() == 0  # 28 → 32 zero padding
    assert data.classes[0] == "t-shirt/top"
    # Validation from the training split, none of it among the training images; the official
    # test split whole, as the test part.
    assert data.validation_from == "training split" and data.test_count == 10_000
    train = {bytes(image.numpy()) for image in data.train_images}
    assert not any(bytes(image.numpy()) in train for image in data.val_images)
    assert describe_source("fashion-mnist", 1000, 500).split == data.split()


def _tiny(data):
    return lambda: create_network(
        "mobilenet_v1",
        0.25,
        "insert@11:groups=4",
        resolution=data.resolution,
        num_classes=data.num_classes,
        in_channels=data.in_channels,
    )


def test_proxy_training_learns_and_is_deterministic():
    torch.set_num_threads(1)
    data = load_data("synthetic", seed=0)
    settings = TrainSettings(epochs=4, batch_size=32)
    first = proxy_train(_tiny(data), data, settings, seed=5)
    second = proxy_train(_tiny(data), data, settings, seed=5)
    assert first.trained_steps == 4 * (512 // 32)
    assert first.accuracy > 0.3  # chance is 0.1
    assert first.accuracy == second.accuracy and first.epoch_losses == second.epoch_losses
    assert first.latency_ms > 0 and first.images_per_second > 0


def test_precise_batch_norm_recomputes_every_layer_as_the_plain_average_of_its_batches():
    from ulsam_nas.search.train import Normalizer, recompute_batch_norm

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4, momentum=0.9))
    images = torch.randint(0, 255, (64, 1, 8, 8), dtype=torch.uint8)
    normalize = Normalizer.of(images, torch.device("cpu"))
    recompute_batch_norm(model, images, normalize, 16)
    with torch.no_grad():
        batches = [model[0](normalize(images[i : i + 16])) for i in range(0, 64, 16)]
    expected = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    assert torch.allclose(model[1].running_mean, expected, atol=1e-6)
    assert model[1].momentum == 0.9  # restored


def test_the_recipe_options_train_and_a_test_part_is_scored_only_when_asked(tmp_path):
    torch.set_num_threads(1)
    data = load_data("synthetic", train=128, val=64)
    recipe = TrainSettings(
        epochs=1, batch_size=32, lr=0.2, warmup=0.25, nesterov=True, label_smoothing=0.1,
        ema=0.9, precise_bn=64, channels_last=True,
    )  # fmt: skip
    plain = proxy_train(_tiny(data), data, recipe, seed=1)
    tested = proxy_train(_tiny(data), data, recipe, seed=1, test=True)
    assert plain.test_accuracy is None and 0 <= tested.test_accuracy <= 1
    assert plain.accuracy == tested.accuracy and len(plain.validation_correct) == 64 // 8
    adamw = proxy_train(
        _tiny(data), data, TrainSettings(epochs=1, batch_size=32, optimizer="adamw", lr=3e-3), 0
    )
    assert 0 <= adamw.accuracy <= 1
    factor = TrainSettings(warmup=0.25).learning_rate_factor(8)
    assert [round(factor(i), 3) for i in range(8)] == [0.5, 1.0, 1.0, 0.933, 0.75, 0.5, 0.25, 0.067]


def test_training_restores_the_processs_denormal_setting():
    from ulsam_nas.search.train import denormals_flushed

    assert not denormals_flushed()
    data = load_data("synthetic", train=64, val=32)
    proxy_train(_tiny(data), data, TrainSettings(epochs=1, batch_size=32), seed=0)
    assert not denormals_flushed()


def test_epoch_callback_sees_each_epoch_and_can_stop_training():
    data = load_data("synthetic", train=128, val=64)
    seen = []

    class Stop(Exception):
        pass

    def on_epoch(epoch, accuracy):
        seen.append(epoch)
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        proxy_train(_tiny(data), data, TrainSettings(epochs=5, batch_size=32), seed=0, on_epoch=on_epoch)
    assert seen == [1, 2]


def test_bad_training_settings():
    data = load_data("synthetic", train=64, val=32)
    with pytest.raises(InvalidInput, match="batch_size=128 is invalid for 64 training images"):
        proxy_train(_tiny(data), data, TrainSettings(batch_size=128), seed=0)
    with pytest.raises(InvalidInput, match="device='tpu' is unknown"):
        proxy_train(_tiny(data), data, TrainSettings(batch_size=32, device="tpu"), seed=0)
    with pytest.raises(InvalidInput, match="optimizer='lamb' is unknown"):
        proxy_train(_tiny(data), data, TrainSettings(batch_size=32, optimizer="lamb"), seed=0)
    with pytest.raises(InvalidInput, match=r"warmup=1\.5 is invalid"):
        proxy_train(_tiny(data), data, TrainSettings(batch_size=32, warmup=1.5), seed=0)
