"""The benchmark's found annotation: where the environments agree no better than coin flips.

Notebook 05's RRR needs an annotation of the shortcut; this module finds one from environment
labels alone. :func:`pixel_agreement` measures, for every input pixel, how much the
environments' first-layer gradient signs agree; :func:`coin_agreement` and :func:`coin_spread`
give the level (and its spread) of pure noise; :func:`disagreement_mask` keeps the pixels at
that level, and :func:`found_annotation` is the protocol's recipe on an untrained network.
:func:`shuffle_environments` deals the digits into environments at random: the found
annotation's null twin. Shapes: a draw's ``x_train`` is ``(E, N, H, W)``; masks and
agreements are ``(H, W)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hvnotes import andmask, models, seeding
from hvnotes.datasets import ShortcutDigits
from hvnotes.train import check_positive_int


def coin_agreement(n_envs: int) -> float:
    """``E |mean_e s_e|`` for ``n_envs`` fair ±1 signs: the agreement of pure noise."""
    n = check_positive_int("n_envs", n_envs)
    return sum(math.comb(n, j) * abs(2 * j - n) for j in range(n + 1)) / n / 2**n


def coin_spread(n_envs: int, n_units: int) -> float:
    """Standard deviation of the mean of ``n_units`` independent :func:`coin_agreement` draws:
    how far pure noise strays from the coin level when averaged over ``n_units`` hidden units."""
    n, units = check_positive_int("n_envs", n_envs), check_positive_int("n_units", n_units)
    second = sum(math.comb(n, j) * (2 * j - n) ** 2 for j in range(n + 1)) / n**2 / 2**n
    return math.sqrt((second - coin_agreement(n) ** 2) / units)


def pixel_agreement(model: nn.Module, data: ShortcutDigits) -> Tensor:
    """How much the environments agree on each input pixel's first-layer weights: ``(H, W)``.

    The mean over hidden units of ``|mean_e sign(g_e)|`` for the first ``nn.Linear``'s weights
    from that pixel (per-environment gradients by :func:`hvnotes.andmask.env_gradients` on the
    full training set). It needs environment labels, not an annotation of the shortcut.
    """
    grads = andmask.env_gradients(model, F.cross_entropy, data.x_train, data.y_train)
    name = next(n for n, p in model.named_parameters() if p.ndim == 2)
    agreement = grads[name].sign().mean(dim=0).abs().mean(dim=0)  # (H * W,)
    return agreement.view(data.x_train.shape[2:])


def _used_pixels(data: ShortcutDigits) -> Tensor:
    """Pixels that are non-zero in some training image: bool ``(H, W)``."""
    return (data.x_train != 0).flatten(0, 1).any(0)


def first_layer_agreement(model: nn.Module, data: ShortcutDigits) -> dict[str, float]:
    """:func:`pixel_agreement` averaged over the frame's pixels and over the digit's (only
    pixels that are ever non-zero count): do the environments agree on the frame?"""
    agreement, used = pixel_agreement(model, data), _used_pixels(data)
    return {
        "frame": agreement[data.shortcut & used].mean().item(),
        "digit": agreement[~data.shortcut & used].mean().item(),
    }


def disagreement_mask(agreement: Tensor, data: ShortcutDigits, delta: float = 0.05) -> Tensor:
    """An annotation found from the environments alone: the pixels (ever non-zero in training)
    whose :func:`pixel_agreement` is below the coin level :func:`coin_agreement` plus
    ``delta`` — where the environments' gradients agree no better than chance."""
    return (agreement < coin_agreement(data.x_train.shape[0]) + delta) & _used_pixels(data)


def shuffle_environments(data: ShortcutDigits, seed: int) -> ShortcutDigits:
    """The same training digits dealt into the same number of environments at random: an
    environment then mixes every code book (the found annotation's null twin)."""
    generator = seeding.generator(seed)
    n_envs, n = data.y_train.shape
    order = torch.randperm(n_envs * n, generator=generator).to(data.y_train.device)
    return data._replace(
        x_train=data.x_train.flatten(0, 1)[order].view_as(data.x_train),
        y_train=data.y_train.flatten()[order].view_as(data.y_train),
    )


def found_annotation(
    data: ShortcutDigits, seed: int, shuffled: bool = False
) -> tuple[Tensor, Tensor]:
    """The protocol's found annotation of one draw: ``(mask (H, W) bool, agreement (H, W))``.

    An untrained ``models.mlp(H * W, (256,), 10)`` initialised with ``seed``; the mask is
    :func:`disagreement_mask` with ``delta`` two standard deviations of a mean of 256 coin
    agreements (:func:`coin_spread`). ``shuffled``: measure agreement on environments dealt at
    random (:func:`shuffle_environments`), the twin that removes the environment labels.
    """
    width = 256
    with seeding.torch_seed(seed):
        net = models.mlp(math.prod(data.x_train.shape[2:]), (width,), 10)
    measured = shuffle_environments(data, seeding.derive_seed(906)) if shuffled else data
    agreement = pixel_agreement(net.to(data.x_train.device), measured)
    delta = 2 * coin_spread(data.x_train.shape[0], width)
    return disagreement_mask(agreement, data, delta), agreement
