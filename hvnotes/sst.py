"""Sufficient Subset Training (Bassan, Eliav & Gur, ICLR 2025): a network that explains itself.

SST trains one network with two heads (``models.DualHeadMLP``): class logits and a score per
feature. The explanation is ``S = {i : s_i >= tau}``; training adds a *faithfulness* term (the
prediction on ``(x_S; z_S̄)`` must equal the model's own prediction) and a *cardinality* term (mean
score) to the cross-entropy, with ``z`` drawn by one of the notions of :mod:`hvnotes.notions`.

This module is training only: the objective (``hard_threshold``, the released code's mask with
no gradient, ``straight_through``, ``sst_loss``, ``sst_explain``, from
:mod:`hvnotes.sst_objective`), ``train_sst`` (:class:`hvnotes.algorithms.SST` in minibatch
epochs), and ``train_sst_model`` / ``train_standard`` (a seeded network built and trained in one
call). It builds its masked inputs
with its own code and never calls the checker's fill code (a unit test makes sure), so a bug in
one cannot make the other agree with it. For convenience it also exposes the checker
(:mod:`hvnotes.sufficiency`) and the post-hoc baselines (:mod:`hvnotes.posthoc`) under their
usual names: ``sst.sufficiency_rate``, ``sst.pgd_complement``, ``sst.greedy_sis``, ...

Shapes: inputs ``x`` are ``(N, *shape)`` (``(N, 28, 28)`` for MNIST); a mask ``keep`` is a bool
tensor broadcastable to ``x``; ``True`` = the feature is in ``S``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd
import torch
from torch import Tensor, nn

from hvnotes import algorithms, seeding, validation
from hvnotes import hparams as hparams_registry
from hvnotes.notions import NOTIONS
from hvnotes.posthoc import attribution, greedy_sis, time_per_explanation, topk_search
from hvnotes.sst_objective import (  # noqa: F401  (re-exported: their old home)
    THRESHOLDS,
    _check_tau,
    _training_fill,
    _training_uniform,
    hard_threshold,
    sst_explain,
    sst_loss,
    straight_through,
)
from hvnotes.sufficiency import (
    complement,
    evaluate_notions,
    explanation_size,
    mask_transplant,
    pgd_complement,
    project,
    random_mask_like,
    row_sufficiency,
    sufficiency_rate,
)

__all__ = [
    "NOTIONS", "THRESHOLDS", "attribution", "complement", "evaluate_notions",
    "explanation_size", "greedy_sis", "hard_threshold", "mask_transplant", "pgd_complement",
    "project", "random_mask_like", "row_sufficiency", "sst_explain", "sst_loss",
    "straight_through", "sufficiency_rate", "time_per_explanation", "topk_search", "train_sst",
    "train_sst_model", "train_standard",
]  # fmt: skip


def _adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam with the fused kernel where torch has one for these parameters (a quarter faster per
    step on a CPU for these small networks; the same algorithm), plain Adam otherwise."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr)


#: the arguments of :func:`sst_loss` that :func:`train_sst` passes on (``loss_kw``)
SST_LOSS_ARGUMENTS = (
    "notion", "xi", "lam", "tau", "threshold", "baseline", "eps", "alpha", "steps", "bounds",
)  # fmt: skip


def train_sst(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    epochs: int = 5,
    lr: float = 1e-3,
    batch_size: int = 64,
    x_eval: Tensor | None = None,
    y_eval: Tensor | None = None,
    eval_every: int = 1,
    controls: bool = False,
    seed: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
    progress: bool = False,
    **loss_kw,
) -> pd.DataFrame:
    """Train ``model`` with ``sst_loss(**loss_kw)``: :class:`hvnotes.algorithms.SST` (Adam) in
    minibatch epochs (:func:`hvnotes.train.fit_algorithm`).

    With ``x_eval``: before training (epoch 0) and after every ``eval_every``-th epoch (and the
    last), on ``(x_eval, y_eval)``, the accuracy (``acc``), explanation size (``size``, fraction
    of features) and baseline faithfulness (``faith_baseline``), measured by the *checker*
    (:mod:`hvnotes.sufficiency`), not by training code; the other epochs' columns are NaN. With
    ``controls=True`` also ``faith_random``: the baseline faithfulness of a random mask with as
    many features per row as the explanation (the control an explanation must beat). Returns
    ``fit``'s history: one row per epoch with the loss terms (``loss``, ``ce``, ``faith``,
    ``size_batch``), ``seconds`` (training time of the epoch by ``clock``, evaluation excluded)
    and the evaluation columns. ``seed`` (None: the run's ``hvnotes.derive_seed(0)``) seeds the
    training fills; ``seed + 1`` the batch order, ``seed + 2`` the random control masks.
    """
    from hvnotes.sufficiency import explanation_size, random_mask_like, sufficiency_rate
    from hvnotes.train import accuracy, check_positive_int, fit_algorithm

    if (x_eval is None) != (y_eval is None):
        raise ValueError(
            "x_eval and y_eval go together: pass both (the evaluation set and its labels) or "
            f"neither; got x_eval {'None' if x_eval is None else 'given'} and y_eval "
            f"{'None' if y_eval is None else 'given'}"
        )
    validation.check_model("model", model, module=True)
    _check_tau(loss_kw.get("tau", 0.5))
    seed = seeding.resolve_seed(seed)
    eval_every = check_positive_int("eval_every", eval_every)
    validation.check_number("lr", lr, positive=True)
    control_generator = seeding.generator(seed + 2)
    tau = loss_kw.get("tau", 0.5)
    calls = {"n": 0}
    unknown = sorted(set(loss_kw) - set(SST_LOSS_ARGUMENTS))
    if unknown:
        raise TypeError(f"train_sst passes {sorted(SST_LOSS_ARGUMENTS)} to sst_loss; got {unknown}")
    # sst_loss names PGD's iterations `steps`, the registry `pgd_steps` (`steps` trains); each
    # value is checked under the name the caller gave it
    hparams = {}
    for name, value in loss_kw.items():
        key = "pgd_steps" if name == "steps" else name
        hparams[key] = hparams_registry.REGISTRY["SST"][key].check(name, value)
    algorithm = algorithms.SST(
        model, hparams | {"lr": lr, "seed": seed}, optimizer=_adam(model, lr)
    )

    def evaluate(model) -> dict[str, float]:
        epoch, calls["n"] = calls["n"], calls["n"] + 1
        columns = ["acc", "size", "faith_baseline"] + (["faith_random"] if controls else [])
        if epoch % eval_every and epoch != epochs:
            return dict.fromkeys(columns, float("nan"))
        keep = sst_explain(model, x_eval, tau)
        row = {
            "acc": accuracy(model, x_eval, y_eval),
            "size": explanation_size(keep).mean().item(),
            "faith_baseline": sufficiency_rate(model, x_eval, keep, "baseline"),
        }
        if controls:
            shuffled = random_mask_like(keep, control_generator)
            row["faith_random"] = sufficiency_rate(model, x_eval, shuffled, "baseline")
        return row

    return fit_algorithm(
        algorithm, x, y, epochs=epochs, batch_size=batch_size,
        evaluate=evaluate if x_eval is not None else None, seed=seed + 1, clock=clock,
        progress=progress,
    )  # fmt: skip


def _seeded(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` with its initial weights drawn from ``seed``, the caller's RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def train_standard(
    x: Tensor,
    y: Tensor,
    *,
    hidden: tuple[int, ...] = (128, 64),
    classes: int = 10,
    epochs: int = 8,
    lr: float = 2e-3,
    batch_size: int = 64,
    seed: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[nn.Module, pd.DataFrame]:
    """The standard classifier post-hoc methods explain: ``models.mlp`` trained with plain
    cross-entropy (Adam). Initial weights from ``seed`` (None: ``derive_seed(0)``), batch order
    from ``seed + 1``; the caller's global RNG is left alone. ``x (N, *shape)``. Returns the
    model (on ``x``'s device) and ``fit``'s history (``seconds`` per epoch by ``clock``)."""
    from hvnotes import models
    from hvnotes.train import fit

    seed = seeding.resolve_seed(seed)
    n = x[0].numel()
    model = _seeded(lambda: models.mlp(n, hidden, classes), seed).to(x.device)
    history = fit(
        model, x, y, epochs=epochs, lr=lr, batch_size=batch_size, optimizer=_adam(model, lr),
        seed=seed + 1, clock=clock, progress=False,
    )  # fmt: skip
    return model, history


def train_sst_model(
    x: Tensor,
    y: Tensor,
    *,
    hidden: tuple[int, ...] = (128, 64),
    classes: int = 10,
    epochs: int = 8,
    lr: float = 2e-3,
    seed: int | None = None,
    **train_kw,
) -> tuple[nn.Module, pd.DataFrame]:
    """A fresh ``models.DualHeadMLP`` (initial weights from ``seed``, None: ``derive_seed(0)``,
    the caller's global RNG untouched) trained by :func:`train_sst` with ``train_kw`` (``notion``,
    ``xi``, ``threshold``, ``tau``, ``x_eval``/``y_eval``, ...). Returns ``(model, history)``."""
    from hvnotes import models

    seed = seeding.resolve_seed(seed)
    model = _seeded(lambda: models.DualHeadMLP(tuple(x.shape[1:]), hidden, classes), seed)
    model = model.to(x.device)
    history = train_sst(model, x, y, epochs=epochs, lr=lr, seed=seed, **train_kw)
    return model, history
