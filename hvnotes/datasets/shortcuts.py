"""Data sets with one shortcut: a label tab (notebook 00), Toy Colors, Decoy MNIST and
Iris-Cancer (notebook 03).

The per-environment shortcuts of the shared benchmark (notebook 05: :func:`shortcut_digits`,
:func:`colored_digits`, :func:`color_digits`) live in
:mod:`hvnotes.datasets.environment_shortcuts` and are re-exported here."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from hvnotes import validation
from hvnotes.datasets.environment_shortcuts import (  # noqa: F401  (re-exported: their old home)
    ColoredDigits,
    ShortcutDigits,
    color_digits,
    colored_digits,
    shortcut_digits,
)
from hvnotes.datasets.images import (
    Split,
    _check_fraction,
    _check_positive,
    _check_positive_int,
    _to_device,
    load_digits,
    load_mnist_subset,
)
from hvnotes.seeding import resolve_seed

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
    validation.check_tensor("images", images, dtype="float", rows=False)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {tuple(images.shape)}")
    validation.check_tensor("tab", tab, dtype="integer", rows=False)
    if tab.shape != (len(images),):
        raise ValueError(f"tab must have shape ({len(images)},), got {tuple(tab.shape)}")
    brightness = _check_positive("brightness", brightness)
    width = images.shape[2] + 2
    if len(tab) and (int(tab.min()) < 0 or int(tab.max()) >= width):
        raise ValueError(
            f"tab positions must lie in [0, {width}), got {int(tab.min())}..{int(tab.max())}"
        )
    framed = torch.nn.functional.pad(images, (1, 1, 1, 1))
    framed[torch.arange(len(images)), 0, tab.long()] = float(brightness)
    return framed


# === Notebook 03: RRR data (Toy Colors, Decoy MNIST, decoy digits, Iris-Cancer) ===

#: Toy Colors' four colours (red, green, blue, violet), RGB in [0, 1] (Ross et al. 2017).
TOY_COLORS_PALETTE = np.array([[255, 0, 0], [0, 255, 0], [0, 128, 255], [128, 0, 255]]) / 255.0


class ToyColors(NamedTuple):
    """Toy Colors: images ``(N, 5, 5, 3)`` float32 in [0, 1], labels ``(N,)`` int64 in {0, 1}.

    ``corners`` and ``top_middle`` are bool ``(5, 5, 3)`` masks of the two rules' pixels (the
    annotations that forbid rule 1 or rule 2).
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    corners: Tensor
    top_middle: Tensor

    to = _to_device


def _toy_colors_images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Colour indices ``(n, 5, 5)`` and labels; both rules hold, vectorised over rows.

    Class 0: the four corners share one colour, and the three top-middle pixels all differ.
    Class 1: a pair of opposite corners differs, and the top-middle has a repeat. As in the
    reference code, a rule is enforced by redrawing one random pixel until it holds.
    """
    idx = rng.integers(0, 4, size=(n, 5, 5))
    y = (rng.random(n) < 0.5).astype(np.int64)
    zero, one = y == 0, y == 1
    # Rule 1 (corners).
    for r, c in [(0, 0), (0, 4), (4, 0)]:
        idx[zero, r, c] = idx[zero, 4, 4]
    pick_tr = one & (rng.random(n) < 0.5)  # else: top-left must differ from bottom-right
    for pick, (r, c), (r2, c2) in [(pick_tr, (0, 4), (4, 0)), (one & ~pick_tr, (0, 0), (4, 4))]:
        bad = pick & (idx[:, r, c] == idx[:, r2, c2])
        while bad.any():
            idx[bad, r, c] = rng.integers(0, 4, size=bad.sum())
            bad = pick & (idx[:, r, c] == idx[:, r2, c2])

    # Rule 2 (top-middle pixels, row 0, columns 1-3): all differ (class 0) or a repeat (class 1).
    def repeats(rows):
        top = idx[rows][:, 0, 1:4]
        return (top[:, 0] == top[:, 1]) | (top[:, 0] == top[:, 2]) | (top[:, 1] == top[:, 2])

    for label, wrong in [(0, True), (1, False)]:
        rows = np.flatnonzero(y == label)
        bad = rows[repeats(rows) == wrong]
        while len(bad):
            col = 1 + rng.integers(0, 3, size=len(bad))
            idx[bad, 0, col] = rng.integers(0, 4, size=len(bad))
            bad = bad[repeats(bad) == wrong]
    return idx, y


def toy_colors(n_train: int = 5000, n_test: int = 5000, seed: int | None = None) -> ToyColors:
    """Toy Colors (Ross, Hughes & Doshi-Velez 2017): two rules, each predicts the label perfectly.

    5x5 RGB images, every pixel one of 4 colours. Rule 1: all four corners match (class 0) or
    not (class 1). Rule 2: the three top-middle pixels all differ (class 0) or not (class 1).
    Train and test are drawn independently with ``seed``.
    """
    for name, n in [("n_train", n_train), ("n_test", n_test)]:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")
    rng = np.random.default_rng(resolve_seed(seed))
    idx, y = _toy_colors_images(int(n_train) + int(n_test), rng)
    x = torch.as_tensor(TOY_COLORS_PALETTE[idx], dtype=torch.float32)
    y = torch.as_tensor(y)
    corners = torch.zeros(5, 5, 3, dtype=torch.bool)
    corners[[0, 0, 4, 4], [0, 4, 0, 4]] = True
    top_middle = torch.zeros(5, 5, 3, dtype=torch.bool)
    top_middle[0, 1:4] = True
    return ToyColors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], corners, top_middle)


def toy_colors_conflict(n: int = 2000, seed: int | None = None) -> tuple[Tensor, Tensor]:
    """Toy Colors images on which the two rules disagree: a behavioural test of rule use.

    Each image is a valid Toy Colors image whose top-middle row (row 0, columns 1-3) is copied
    from an image of the *other* class, so rule 1 (corners) says ``y_corners`` and rule 2
    (top-middle) says ``1 - y_corners``. A model's share of predictions equal to ``y_corners``
    is how often it follows the corners when it has to choose.

    Returns:
        ``x`` ``(n, 5, 5, 3)`` float32 in [0, 1], ``y_corners`` ``(n,)`` int64.
    """
    n = _check_positive_int("n", n)
    rng = np.random.default_rng(resolve_seed(seed))
    idx, y = _toy_colors_images(n, rng)
    donors = {0: np.empty((0, 5, 5), dtype=idx.dtype), 1: np.empty((0, 5, 5), dtype=idx.dtype)}
    while min(len(d) for d in donors.values()) < n:  # enough donors of each class
        more, labels = _toy_colors_images(n, rng)
        for c in (0, 1):
            donors[c] = np.concatenate([donors[c], more[labels == c]])
    for c in (0, 1):
        rows = np.flatnonzero(y == c)
        idx[rows, 0, 1:4] = donors[1 - c][: len(rows), 0, 1:4]
    x = torch.as_tensor(TOY_COLORS_PALETTE[idx], dtype=torch.float32)
    return x, torch.as_tensor(y)


def swatch_shade(digit: Tensor) -> Tensor:
    """Decoy MNIST's swatch grey for a digit: ``(255 - 25 k) / 255`` (0 -> white, 9 -> dark).

    ``digit``: integer tensor of digits 0..9, any shape; returns float of the same shape.
    """
    validation.check_tensor("digit", digit, dtype="integer", rows=False)
    if digit.numel() and (int(digit.min()) < 0 or int(digit.max()) > 9):
        raise ValueError(f"digit must hold digits 0..9, got {int(digit.min())}..{int(digit.max())}")
    return (255.0 - 25.0 * digit.float()) / 255.0


def add_swatch(
    images: Tensor, shade_digits: Tensor, corners: Tensor, size: int = 4
) -> tuple[Tensor, Tensor]:
    """Paint a ``size x size`` grey swatch into one corner of each image.

    Args:
        images: ``(N, H, W)`` in [0, 1] (not modified).
        shade_digits: ``(N,)`` ints 0..9; the swatch's grey is :func:`swatch_shade` of them.
        corners: ``(N,)`` ints 0..3 (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right).
        size: swatch side in pixels.

    Returns:
        ``(decoyed images (N, H, W), swatch masks (N, H, W) bool)``.
    """
    validation.check_tensor("images", images, dtype="float", rows=False)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {tuple(images.shape)}")
    n, h, w = images.shape
    for name, t, hi in [("shade_digits", shade_digits, 9), ("corners", corners, 3)]:
        validation.check_tensor(name, t, dtype="integer", rows=False)
        if t.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {tuple(t.shape)}")
        if n and (int(t.min()) < 0 or int(t.max()) > hi):
            raise ValueError(f"{name} must hold ints in [0, {hi}]")
    try:
        size = validation.check_integer("size", size, low=1, high=min(h, w) // 2)
    except (TypeError, ValueError):
        raise ValueError(f"size must be an int in [1, {min(h, w) // 2}], got {size!r}") from None
    rows = torch.arange(h, device=images.device)
    cols = torch.arange(w, device=images.device)
    bottom = (corners.to(images.device) // 2 == 1).view(n, 1)
    right = (corners.to(images.device) % 2 == 1).view(n, 1)
    in_rows = torch.where(bottom, rows >= h - size, rows < size)  # (N, H)
    in_cols = torch.where(right, cols >= w - size, cols < size)  # (N, W)
    masks = in_rows[:, :, None] & in_cols[:, None, :]
    shades = swatch_shade(shade_digits.to(images.device)).to(images.dtype).view(n, 1, 1)
    return torch.where(masks, shades, images), masks


class DecoySplit(NamedTuple):
    """A decoy split: images ``(N, H, W)`` in [0, 1] with a swatch, labels, swatch masks.

    In training the swatch's shade encodes the label; in test it encodes a random digit.
    ``clean_*`` are the same images without a swatch; ``corner_*`` say where the swatch is.
    """

    x_train: Tensor
    y_train: Tensor
    a_train: Tensor
    x_test: Tensor
    y_test: Tensor
    a_test: Tensor
    clean_train: Tensor
    clean_test: Tensor
    corner_train: Tensor
    corner_test: Tensor

    to = _to_device


def _decoy(split: Split, size: int, seed: int) -> DecoySplit:
    g = torch.Generator().manual_seed(seed + 1)
    corner_train = torch.randint(0, 4, (len(split.y_train),), generator=g)
    corner_test = torch.randint(0, 4, (len(split.y_test),), generator=g)
    random_digits = torch.randint(0, 10, (len(split.y_test),), generator=g)
    x_train, a_train = add_swatch(split.x_train, split.y_train, corner_train, size)
    x_test, a_test = add_swatch(split.x_test, random_digits, corner_test, size)
    return DecoySplit(
        x_train, split.y_train, a_train, x_test, split.y_test, a_test,
        split.x_train, split.x_test, corner_train, corner_test,
    )  # fmt: skip


def decoy_mnist(seed: int | None = None, size: int = 4, test_fraction: float = 0.2) -> DecoySplit:
    """Decoy MNIST (Ross et al. 2017) built from the 5 000-image MNIST subset.

    A ``size x size`` swatch in a random corner; shade ``(255 - 25 y) / 255`` in training, the
    shade of a uniformly random digit in test. Annotations ``a_*`` are the swatch pixels.
    """
    return _decoy(load_mnist_subset(seed, test_fraction), size, resolve_seed(seed))


def decoy_digits(seed: int | None = None, size: int = 2, test_fraction: float = 0.25) -> DecoySplit:
    """The decoy construction on scikit-learn's 8x8 digits (a 2x2 swatch by default)."""
    return _decoy(load_digits(seed, test_fraction), size, resolve_seed(seed))


class IrisCancer(NamedTuple):
    """Iris-Cancer rows ``(N, 34)`` float32: 4 Iris features, then 30 breast-cancer features.

    ``annotations`` is bool ``(34,)``, True on the 4 Iris columns (the confound).
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    annotations: Tensor

    to = _to_device


def iris_cancer(
    seed: int | None = None, test_fraction: float = 0.33, standardize: bool = True
) -> IrisCancer:
    """Iris-Cancer (Ross et al. 2017): two data sets glued side by side, one label for both.

    Label 0 pairs an Iris versicolor with a malignant tumour, label 1 a virginica with a benign
    one (the first 50 of each from scikit-learn's bundled sets), so Iris is a second, easier
    reason for the label. Features are standardised with the training rows' mean and std
    (the paper used raw features), so "removing Iris" by setting it to 0 means "to its mean".
    """
    from sklearn.datasets import load_breast_cancer, load_iris
    from sklearn.model_selection import train_test_split

    if not isinstance(standardize, bool | np.bool_):
        raise TypeError(f"standardize must be True or False, got {standardize!r}")
    iris, cancer = load_iris(), load_breast_cancer()
    x_iris = np.concatenate([iris.data[iris.target == c][:50] for c in (1, 2)])
    x_cancer = np.concatenate([cancer.data[cancer.target == c][:50] for c in (0, 1)])
    x = np.concatenate([x_iris, x_cancer], axis=1)
    y = np.repeat([0, 1], 50)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=_check_fraction("test_fraction", test_fraction),
        random_state=resolve_seed(seed), stratify=y,
    )  # fmt: skip
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0) + 1e-8
    if not standardize:
        mean, std = np.zeros_like(mean), np.ones_like(std)
    as_x = lambda a: torch.as_tensor((a - mean) / std, dtype=torch.float32)  # noqa: E731
    annotations = torch.zeros(34, dtype=torch.bool)
    annotations[:4] = True
    return IrisCancer(
        as_x(x_tr), torch.as_tensor(y_tr), as_x(x_te), torch.as_tensor(y_te), annotations
    )
