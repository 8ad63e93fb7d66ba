"""Right for the Right Reasons (Ross, Hughes & Doshi-Velez, IJCAI 2017).

An *input gradient* says how the model's output would move if one input feature moved. RRR
penalises input gradients where an annotation says "this part of the input must not matter":

.. math::

    L(\\theta) = \\underbrace{\\tfrac1N \\sum_n \\mathrm{CE}(f_\\theta(x_n), y_n)}_{\\text{right answers}}
      + \\lambda_1 \\underbrace{\\tfrac1N \\sum_n \\sum_d \\Big(A_{nd}\\,
        \\frac{\\partial}{\\partial x_{nd}} \\sum_k \\log \\hat p_k(x_n)\\Big)^2}_{\\text{right reasons}}

and the parameter L2 term is the optimizer's weight decay. Training through a gradient is *double
backprop*: ``torch.autograd.grad(..., create_graph=True)`` keeps the input gradient differentiable
with respect to the parameters, so one ``.backward()`` of the total trains both terms.

*Find another explanation* (FAE) trains a sequence of models, each forbidden to use the inputs
that carried the largest gradients of all the models before it.

Conventions: inputs ``x`` ``(B, ...)`` (any trailing shape; ``models.mlp`` flattens), logits
``(B, K)``, labels ``(B,)`` int64. We average CE over the batch and sum the penalty over features,
averaged over examples, on inputs scaled to [0, 1]. The paper sums both terms over the batch,
which leaves RR/CE unchanged; what moves λ1 is its raw 0..255 pixels: a gradient with respect to
a [0, 1] pixel is 255 times larger, so the paper's λ1 = 1000 is about 1000 / 255² here. Measure
RR/CE over a sweep of λ1 rather than trusting any one number (the per-step ``ce``/``rr`` that
:func:`fit_rrr` records). With two classes, ∇x Σ_k log p_k = (1 − 2 p_0) ∇x (z_0 − z_1): a model
can shrink the penalised gradient by being under-confident (p_0 → ½) as well as by ignoring the
annotated inputs; :func:`prediction_summary` reports the confidence that tells the two apart.

This module holds RRR's training (:func:`fit_rrr` trains :class:`hvnotes.algorithms.RRR` on
:func:`rrr_loss`, which lives in :mod:`hvnotes.rrr_objective`; :func:`train_mlp`; the λ1
heuristic :func:`rr_ce_ratio`) and find-another-explanation. Input gradients, their largest
entries and their mass in a region are in :mod:`hvnotes.input_gradients`; the diagnostics of
which rule a model uses in :mod:`hvnotes.rule_use`; every name is re-exported here.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from hvnotes import algorithms, seeding, train, validation
from hvnotes.input_gradients import (  # noqa: F401  (re-exported: their old home)
    _QUANTITIES,
    _batched_input_gradients,
    _check_annotations,
    _check_cutoff,
    _check_inputs,
    _check_quantity,
    _per_example,
    _per_row_annotations,
    gradient_mass,
    input_gradients,
    largest_gradient_mask,
)
from hvnotes.rrr_objective import rrr_loss
from hvnotes.rule_use import (  # noqa: F401  (re-exported: their old home)
    area_matched_control,
    prediction_summary,
    rule_use,
)


def fit_rrr(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    annotations: Tensor,
    l2_grads: float,
    *,
    quantity: str = "sum_log_probs",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: torch.optim.Optimizer | None = None,
    **fit_kwargs,
) -> pd.DataFrame:
    """Train ``model`` with :func:`rrr_loss`: :class:`hvnotes.algorithms.RRR` in minibatch
    epochs (:func:`hvnotes.train.fit_algorithm`).

    Args:
        x, y: training set ``(N, ...)``, ``(N,)``.
        annotations: ``(N, ...)`` (one mask per row, shuffled with its row) or one mask
            broadcastable to ``x[0]`` (the same for every row).
        l2_grads: λ1.
        quantity: the penalised output, as in :func:`rrr_loss`.
        lr, weight_decay: the default optimizer's, Adam (its weight decay is the paper's
            parameter L2); ``optimizer``: one of your own instead.
        fit_kwargs: passed to :func:`hvnotes.train.fit_algorithm` (epochs, batch_size,
            eval_sets, seed, progress, ...).

    Returns:
        the history with the epoch means of the two terms, ``ce`` and ``rr``, beside the
        total ``loss``; ``history.attrs["steps"]`` holds all three per optimizer step.
    """
    validation.check_model("model", model, module=True)
    l2_grads = train.check_number("l2_grads", l2_grads, low=0.0)
    mask = _check_annotations(annotations, x)
    per_row = _per_row_annotations(annotations, x)
    hparams = {"l2_grads": l2_grads, "quantity": quantity, "lr": lr, "weight_decay": weight_decay}
    algorithm = algorithms.RRR(
        model, hparams, annotations=None if per_row else mask, optimizer=optimizer
    )
    rows = (mask,) if per_row else ()
    return train.fit_algorithm(algorithm, x, y, *rows, log_steps=True, **fit_kwargs)


def train_mlp(
    x: Tensor,
    y: Tensor,
    annotations: Tensor,
    l2_grads: float,
    *,
    hidden: Sequence[int] = (50, 30),
    classes: int | None = None,
    seed: int | None = None,
    **fit_kwargs,
) -> tuple[nn.Module, pd.DataFrame]:
    """A fresh MLP ``D -> hidden -> K`` (the paper's network) trained with :func:`fit_rrr`.

    Args:
        x, y, annotations, l2_grads: as in :func:`fit_rrr` (``l2_grads = 0``: plain training).
        hidden: hidden layer widths; classes: ``K`` (default ``y.max() + 1``).
        seed: the initialisation is drawn under ``seeding.torch_seed(seed)`` (None: the run's
            ``derive_seed(0)``), so it does not depend on what ran before; ``fit_kwargs`` go to
            :func:`fit_rrr` (epochs, batch_size, eval_sets, seed of the batch order, ...).

    Returns:
        ``(model, history)``, the model on ``x``'s device.
    """
    from hvnotes import models

    classes = int(y.max()) + 1 if classes is None else classes
    with seeding.torch_seed(seed):
        model = models.mlp(x[0].numel(), tuple(hidden), classes).to(x.device)
    fit_kwargs.setdefault("progress", False)
    return model, fit_rrr(model, x, y, annotations, l2_grads, **fit_kwargs)


def rr_ce_ratio(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    annotations: Tensor,
    l2_grads: float,
    steps: int = 3,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int | None = None,
) -> float:
    """The paper's λ1 heuristic: the ratio RR/CE after a few steps of training.

    Trains a *copy* of ``model`` for ``steps`` Adam steps on minibatches of RRR and returns
    ``rr / ce`` measured on the last step's batch. The paper aims for about 1 (its useful band
    is about 0.2 to 30). Only with ``steps=1`` (measured before any update) is the ratio exactly
    proportional to λ1; after a few steps the penalty has already shrunk the annotated gradient
    at large λ1, so the ratio grows more slowly than λ1. A freshly initialised PyTorch MLP
    predicts almost uniformly, where ∇Σ_k log p_k is nearly zero, so this early ratio is tiny
    for moderate λ1 (on Decoy MNIST, notebook 03, ratio 1 falls where the penalty has already
    collapsed accuracy). Measure it over a sweep of λ1 and check the choice against data where
    the shortcut is broken.
    """
    steps = train.check_positive_int("steps", steps)
    batch_size = train.check_positive_int("batch_size", batch_size)
    lr = train.check_number("lr", lr, positive=True)
    l2_grads = train.check_number("l2_grads", l2_grads, low=0.0)
    probe = copy.deepcopy(model)
    per_row = _per_row_annotations(annotations, x)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    generator = seeding.generator(seed)
    order = torch.randperm(len(x), generator=generator).to(x.device)
    for step in range(steps):
        idx = order[(step * batch_size) % len(x) :][:batch_size]
        total, ce, rr = rrr_loss(
            probe, x[idx], y[idx], annotations[idx] if per_row else annotations, l2_grads
        )
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
    return rr.item() / max(ce.item(), 1e-12)


class Round(NamedTuple):
    """One round of find-another-explanation."""

    model: nn.Module  #: the model trained in this round
    annotations: Tensor  #: the bool mask it was trained under (union of earlier masks)
    mask: Tensor  #: its own largest-gradient mask on the training set
    history: pd.DataFrame  #: its training history


def find_another_explanation(
    make_model: Callable[[], nn.Module],
    x: Tensor,
    y: Tensor,
    rounds: int,
    l2_grads: float | Sequence[float],
    cutoff: float = 0.67,
    channel_dim: int | None = None,
    annotations: Tensor | None = None,
    eval_sets: Mapping[str, tuple[Tensor, Tensor]] | None = None,
    init_seed: int | None = None,
    **fit_kwargs,
) -> list[Round]:
    """Train models that are right for *different* reasons, one round at a time.

    Round 0 trains with ``annotations`` (default: none). After each round, the model's
    :func:`largest_gradient_mask` on the whole training set is OR-ed into the annotations of
    the next round, so round i+1 may not use what rounds 0..i relied on most.

    Args:
        make_model: returns a fresh model (already on ``x``'s device).
        x, y: training set ``(N, ...)``, ``(N,)``.
        rounds: number of models to train (>= 1).
        l2_grads: λ1, one number or one per round (the paper raises it in later rounds).
        cutoff, channel_dim: passed to :func:`largest_gradient_mask`.
        annotations: bool ``(N, ...)`` to start from (default all False).
        eval_sets, fit_kwargs: passed to :func:`fit_rrr`.
        init_seed: round i builds ``make_model()`` with torch's RNG seeded by ``init_seed + i``
            (and restored after), so each round's initialisation does not depend on what ran
            before (None: the run's ``hvnotes.derive_seed(0)``).

    Returns:
        a list of ``rounds`` :class:`Round` s.
    """
    validation.check_callable("make_model", make_model)
    rounds = train.check_positive_int("rounds", rounds)
    one = isinstance(l2_grads, numbers.Real) or (
        isinstance(l2_grads, Tensor | np.ndarray) and l2_grads.ndim == 0
    )
    lams = [l2_grads] * rounds if one else list(l2_grads)
    if len(lams) != rounds:
        raise ValueError(f"l2_grads must be a number or {rounds} numbers, got {len(lams)}")
    lams = [
        train.check_number("l2_grads" if one else f"l2_grads[{i}]", lam, low=0.0)
        for i, lam in enumerate(lams)
    ]
    _check_cutoff(cutoff)
    validation.check_tensor("x", x)
    annotations = _round_annotations(x, annotations)
    first_seed = seeding.resolve_seed(init_seed, "init_seed")
    out: list[Round] = []
    for i, lam in enumerate(lams):
        with seeding.torch_seed(first_seed + i):  # the caller's RNG stream is left as it was
            model = make_model()
        if any(model is r.model for r in out):
            raise ValueError(
                "make_model must return a new model every round, got the same object twice "
                "(it would overwrite the earlier rounds)"
            )
        history = fit_rrr(model, x, y, annotations, lam, eval_sets=eval_sets, **fit_kwargs)
        out.append(trained_round(model, x, history, annotations, cutoff, channel_dim))
        annotations = annotations | out[-1].mask
    return out


def trained_round(
    model: nn.Module,
    x: Tensor,
    history: pd.DataFrame | None = None,
    annotations: Tensor | None = None,
    cutoff: float = 0.67,
    channel_dim: int | None = None,
) -> Round:
    """A model trained elsewhere, as a round of find-another-explanation.

    Lets a plain model you already have serve as round 0: continue with
    ``find_another_explanation(..., annotations=r.annotations | r.mask)``.

    Args:
        model: the trained model.
        x: its training set ``(N, ...)``; the mask is computed on it.
        history: its training history, kept in the round (optional).
        annotations: bool ``(N, ...)`` it was trained under (default: none).
        cutoff, channel_dim: passed to :func:`largest_gradient_mask`.

    Returns:
        a :class:`Round` whose ``mask`` is the model's largest-gradient mask on ``x``.
    """
    annotations = _round_annotations(x, annotations)
    with train.evaluating(model):
        mask = largest_gradient_mask(_batched_input_gradients(model, x), cutoff, channel_dim)
    return Round(model, annotations, mask, history)


def _round_annotations(x: Tensor, annotations: Tensor | None) -> Tensor:
    """FAE's annotations: bool of ``x``'s shape on its device (None: nothing annotated)."""
    if annotations is None:
        return torch.zeros_like(x, dtype=torch.bool)
    if annotations.shape != x.shape:
        raise ValueError(
            f"annotations must have x's shape {tuple(x.shape)}, got {tuple(annotations.shape)}"
        )
    return annotations.to(device=x.device, dtype=torch.bool)
