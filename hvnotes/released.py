"""The complement fills of the released SST code (IBM/SAX, ``ICLR25/``), rebuilt for an audit.

Notebook 04 measures what the paper's numbers were measured *with*, beside what the notions
mean. Two fills of the released evaluation differ from their names:

* **"robust" (PGD).** Its update writes the signed-gradient step into a temporary but projects
  the *previous* iterate, so every iteration returns the random start: the "attack" is uniform
  noise in ``[-eps, eps]`` on the complement. (It also attacks the explanation head's output
  on MNIST and the true label instead of the prediction; with the step discarded, neither
  matters.) :func:`released_pgd_fill` is that random start.
* **"probabilistic".** ``clip(x + eps * U[0, 1), 0, 1)`` with one noise draw for the whole batch:
  a one-sided local perturbation of ``x`` itself, not a draw from the data domain.
  :func:`released_noise_fill`.

These are replicas for measurement, not methods to use: the course's checker is
:mod:`hvnotes.sufficiency`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hvnotes.notions import check_generator, check_keep, check_x


def released_pgd_fill(
    x: Tensor, keep: Tensor, eps: float, generator: torch.Generator | None = None
) -> Tensor:
    """What the released PGD returns after any number of steps: ``x + U[-eps, eps]`` on the
    complement, clipped to [0, 1]; kept features untouched. ``(N, *shape)``."""
    x, keep = check_x(x), check_keep(check_x(x), keep)
    check_generator(generator)
    device = generator.device if generator is not None else x.device
    noise = (torch.rand(x.shape, generator=generator, device=device) * 2 - 1).to(x) * eps
    return torch.where(keep, x, (x + noise).clamp(0.0, 1.0))


def released_noise_fill(
    x: Tensor, keep: Tensor, eps: float, generator: torch.Generator | None = None
) -> Tensor:
    """The released "probabilistic" fill: ``clip(x + eps * U[0, 1), 0, 1)`` on the complement,
    one noise vector shared by every row of the batch (as in its MNIST script)."""
    x, keep = check_x(x), check_keep(check_x(x), keep)
    check_generator(generator)
    device = generator.device if generator is not None else x.device
    noise = torch.rand(x.shape[1:], generator=generator, device=device).to(x) * eps
    return torch.where(keep, x, (x + noise).clamp(0.0, 1.0))
