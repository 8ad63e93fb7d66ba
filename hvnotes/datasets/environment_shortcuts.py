"""Shortcuts that change from one environment to the next (notebook 05): the data of the shared
benchmark.

In every environment a shortcut predicts the label better than the digit does, but its rule is
the environment's own: :func:`shortcut_digits` frames each digit with a per-environment code for
its label (a different code book in every environment, a fresh one in a new environment), and
:func:`colored_digits` / :func:`color_digits` colour it after ColoredMNIST (the same rule, colour =
label, right more often in some environments than in others). Every name here is re-exported by
:mod:`hvnotes.datasets.shortcuts` and by :mod:`hvnotes.datasets`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from hvnotes.datasets.images import (
    _check_fraction,
    _check_positive,
    _check_positive_int,
    _to_device,
    load_digits,
)
from hvnotes.seeding import resolve_seed

# === Notebook 05: the shared shortcut benchmark ===


class ShortcutDigits(NamedTuple):
    """Digits in a frame whose pixels carry a per-environment code for the label.

    ``H = W = 8 + 2 * width``. ``x_train`` ``(E, N, H, W)`` and ``y_train`` ``(E, N)``: ``N``
    training digits in each of ``E`` environments. ``x_id`` ``(M, H, W)``: held-out digits with
    the code of their own class in a random training environment (``env_id`` ``(M,)``);
    ``x_shift``: the same digits with the code of a random class ``shift_class`` ``(M,)`` (the
    shortcut broken); ``y_test`` ``(M,)``. ``shortcut`` bool ``(H, W)`` marks the frame (the
    annotation "must not matter"); ``codes`` ``(E, 10, H, W)`` holds every environment's codes.
    ``x_new`` ``(M, H, W)``: the same digits in a *new* environment, with the code of their own
    class in a fresh code book ``new_codes`` ``(10, H, W)`` that no training environment used.
    """

    x_train: Tensor
    y_train: Tensor
    x_id: Tensor
    x_shift: Tensor
    y_test: Tensor
    shortcut: Tensor
    codes: Tensor
    env_id: Tensor
    shift_class: Tensor
    x_new: Tensor
    new_codes: Tensor

    to = _to_device


def shortcut_digits(
    n_envs: int = 8,
    width: int = 2,
    density: float = 0.5,
    brightness: float = 1.0,
    seed: int | None = None,
    test_fraction: float = 0.25,
) -> ShortcutDigits:
    """The course's shared shortcut benchmark: 8x8 digits framed by a per-environment label code.

    Each digit is padded with a frame ``width`` pixels wide. Environment ``e`` draws, for every
    class ``c``, its own code: ``round(density * F)`` of the ``F`` frame pixels set to
    ``brightness`` (the rest 0). A training digit of class ``c`` in environment ``e`` wears code
    ``(e, c)``, so inside one environment the frame alone gives the label, but the rule is
    different in every environment: a frame pixel that means "3" in one means "7" in another.
    The digit's shape is the one rule all environments share. The training digits are shuffled
    and dealt round-robin into the environments (``N = n_train // n_envs`` each; the few left
    over are dropped), so every ``n_envs`` uses the same images.

    Test digits come three times: ``x_id`` with the code of their own class in a random training
    environment (the shortcut still works), ``x_shift`` with the code of a uniformly random class
    (it matches the label 10 % of the time: the shortcut is broken) and ``x_new`` with the code of
    their own class in a new environment's fresh code book (domain generalisation proper).
    """
    n_envs = _check_positive_int("n_envs", n_envs)
    width = _check_positive_int("width", width)
    density = _check_fraction("density", density)
    brightness = _check_positive("brightness", brightness)
    seed = resolve_seed(seed)
    split = load_digits(seed, test_fraction)
    if n_envs > len(split.y_train):
        raise ValueError(f"n_envs must be <= {len(split.y_train)} (one digit each), got {n_envs}")
    rng = np.random.default_rng(seed + 5)
    side = 8 + 2 * width
    frame = torch.ones(side, side, dtype=torch.bool)
    frame[width:-width, width:-width] = False
    frame_idx = frame.flatten().nonzero().squeeze(1).numpy()
    lit = max(1, round(density * len(frame_idx)))
    codes = np.zeros((n_envs, 10, side * side), dtype=np.float32)
    for e in range(n_envs):
        for c in range(10):
            codes[e, c, rng.permutation(frame_idx)[:lit]] = brightness
    codes = torch.as_tensor(codes).view(n_envs, 10, side, side)

    def framed(images: Tensor) -> Tensor:
        return torch.nn.functional.pad(images, (width,) * 4)

    per_env = len(split.y_train) // n_envs
    order = torch.as_tensor(rng.permutation(len(split.y_train))[: per_env * n_envs])
    order = order.view(per_env, n_envs).T  # round-robin: environment e gets order[e::n_envs]
    y_train = split.y_train[order]  # (E, N)
    x_train = framed(split.x_train[order]) + codes[torch.arange(n_envs)[:, None], y_train]
    m = len(split.y_test)
    env_id = torch.as_tensor(rng.integers(0, n_envs, m))
    shift_class = torch.as_tensor(rng.integers(0, 10, m))
    x_id = framed(split.x_test) + codes[env_id, split.y_test]
    x_shift = framed(split.x_test) + codes[env_id, shift_class]
    new_codes = np.zeros((10, side * side), dtype=np.float32)  # drawn last: the rest is unchanged
    for c in range(10):
        new_codes[c, rng.permutation(frame_idx)[:lit]] = brightness
    new_codes = torch.as_tensor(new_codes).view(10, side, side)
    x_new = framed(split.x_test) + new_codes[split.y_test]
    return ShortcutDigits(
        x_train, y_train, x_id, x_shift, split.y_test, frame, codes, env_id, shift_class, x_new,
        new_codes,
    )  # fmt: skip


# === Notebook 05: IRM's own kind of shortcut (colored digits, after ColoredMNIST) ===


class ColoredDigits(NamedTuple):
    """Digits for a ColoredMNIST-style task (Arjovsky et al. 2019), before colouring.

    ``x_train`` ``(E, N, H, W)`` grey training digits dealt into ``E`` environments, ``digit_train``
    ``(E, N)`` their classes; ``x_test`` ``(M, H, W)``, ``digit_test`` ``(M,)``. ``colour_flip``
    ``(E,)``: each training environment's probability that the colour disagrees with the label;
    ``test_flip`` the test environment's; ``label_noise`` the probability that a label is
    flipped. :func:`color_digits` draws labels and colours (afresh at every call).
    """

    x_train: Tensor
    digit_train: Tensor
    x_test: Tensor
    digit_test: Tensor
    colour_flip: Tensor
    test_flip: float
    label_noise: float

    def to(self, device):
        return self._replace(
            **{k: getattr(self, k).to(device) for k in ("x_train", "digit_train", "x_test",
                                                         "digit_test", "colour_flip")}
        )  # fmt: skip


def color_digits(
    images: Tensor,
    digits: Tensor,
    colour_flip,
    label_noise: float = 0.25,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Colour digits as ColoredMNIST does: a noisy binary label, and a colour that agrees with it.

    The label is ``digit < 5``, flipped with probability ``label_noise``; the colour is the label,
    flipped with probability ``colour_flip`` (a number, or one per leading index, broadcast
    against ``digits``); the image goes into the colour's channel, the other channel is 0.

    Args:
        images: ``(..., N, H, W)``; digits: ``(..., N)`` ints 0..9.
        colour_flip: broadcastable to ``digits[..., :1]`` (e.g. ``(E, 1)`` for one value per
            environment), each in [0, 1].

    Returns:
        ``(x (..., N, 2, H, W), y (..., N))`` with ``y`` in {0, 1}.
    """
    if images.shape[:-2] != digits.shape:
        raise ValueError(
            f"images must be (..., N, H, W) for digits {tuple(digits.shape)}, got {tuple(images.shape)}"
        )
    flip = torch.as_tensor(colour_flip, dtype=images.dtype, device=images.device)
    if ((flip < 0) | (flip > 1)).any() or not 0 <= label_noise <= 1:
        raise ValueError("colour_flip and label_noise must be probabilities in [0, 1]")
    shape = digits.shape

    def coin(p):
        u = torch.rand(shape, generator=generator, device="cpu").to(images.device)
        return u < p

    y = (digits < 5) ^ coin(label_noise)
    colour = y ^ coin(flip)
    x = torch.stack([images * (~colour)[..., None, None], images * colour[..., None, None]], dim=-3)
    return x, y.long()


def colored_digits(
    n_envs: int = 2,
    colour_flips=(0.1, 0.2),
    test_flip: float = 0.9,
    label_noise: float = 0.25,
    seed: int | None = None,
    test_fraction: float = 0.25,
) -> ColoredDigits:
    """ColoredMNIST's design on scikit-learn's 8x8 digits: the shortcut's *strength* varies.

    The training digits are shuffled and dealt round-robin into ``n_envs`` environments. In
    every environment the colour is the same kind of rule (colour = label), right with
    probability ``1 - colour_flips[e]`` (0.9 and 0.8 by default), more often than the digit's
    shape, which gives the noisy label only ``1 - label_noise`` = 75 % of the time; in the test
    environment the colour is right only ``1 - test_flip`` = 10 % of the time. Colours and label
    noise are drawn by :func:`color_digits` (online: afresh for every batch, so a network cannot
    memorise them).
    """
    n_envs = _check_positive_int("n_envs", n_envs)
    flips = torch.as_tensor(colour_flips, dtype=torch.float32)
    if flips.shape != (n_envs,):
        raise ValueError(f"colour_flips must give one probability per environment ({n_envs})")
    seed = resolve_seed(seed)
    split = load_digits(seed, test_fraction)
    rng = np.random.default_rng(seed + 7)
    per_env = len(split.y_train) // n_envs
    order = torch.as_tensor(rng.permutation(len(split.y_train))[: per_env * n_envs])
    order = order.view(per_env, n_envs).T
    return ColoredDigits(
        split.x_train[order], split.y_train[order], split.x_test, split.y_test, flips,
        float(test_flip), float(label_noise),
    )  # fmt: skip
