"""Sufficient Subset Training (Bassan, Eliav & Gur, ICLR 2025): a network that explains itself.

SST trains one network with two heads (``models.DualHeadMLP``): class logits and a score per
feature. The explanation is ``S = {i : s_i >= tau}``; training adds a *faithfulness* term (the
prediction on ``(x_S; z_S̄)`` must equal the model's own prediction) and a *cardinality* term (mean
score) to the cross-entropy, with ``z`` drawn by one of the notions of :mod:`hvnotes.notions`.

This module is training only: ``hard_threshold`` (the released code: no gradient),
``straight_through``, ``sst_loss``, ``sst_explain``, ``train_sst``, and ``train_sst_model`` /
``train_standard`` (a seeded network built and trained in one call). It builds its masked inputs
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
import torch.nn.functional as F
from torch import Tensor, nn

from hvnotes import seeding, validation
from hvnotes.notions import NOTIONS, check_notion, check_pgd
from hvnotes.posthoc import attribution, greedy_sis, time_per_explanation, topk_search
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
from hvnotes.train import evaluating

__all__ = [
    "NOTIONS", "THRESHOLDS", "attribution", "complement", "evaluate_notions",
    "explanation_size", "greedy_sis", "hard_threshold", "mask_transplant", "pgd_complement",
    "project", "random_mask_like", "row_sufficiency", "sst_explain", "sst_loss",
    "straight_through", "sufficiency_rate", "time_per_explanation", "topk_search", "train_sst",
    "train_sst_model", "train_standard",
]  # fmt: skip

THRESHOLDS = ("ste", "hard")


def _training_uniform(shape, lo: float, hi: float, like: Tensor, generator) -> Tensor:
    """Training's own U[lo, hi) of ``shape``, drawn on the generator's device, returned on ``like``'s."""
    device = generator.device if generator is not None else like.device
    u = torch.rand(shape, generator=generator, device=device, dtype=like.dtype)
    return (lo + (hi - lo) * u).to(like.device)


def hard_threshold(scores: Tensor, tau: float = 0.5) -> Tensor:
    """``1[s >= tau]`` as floats, with **no gradient**: the mask of the released code.

    Booleans carry no gradient, so the faithfulness loss cannot reach the explanation head; the
    only signal it gets is the cardinality term pushing every score down. Notebook 04 shows the
    consequence: the masks shrink to empty.
    """
    return (scores >= tau).to(scores.dtype).detach()


def straight_through(scores: Tensor, tau: float = 0.5) -> Tensor:
    """Hard mask forward, identity gradient backward (Bengio et al. 2013).

    The value is exactly ``1[s >= tau]``; the gradient w.r.t. ``scores`` is 1, so w.r.t. the
    head's pre-sigmoid output it is the sigmoid's derivative ``s (1 - s)``.
    """
    hard = (scores >= tau).to(scores.dtype)
    return hard + (scores - scores.detach())  # (s - s) is exactly 0: the value stays 0/1


def _training_fill(model, x, keep, target, notion, baseline, eps, alpha, steps, bounds, gen):
    """The values training puts on the complement (detached): training's own code path."""
    lo, hi = bounds
    if notion == "baseline":
        return (
            torch.full_like(x, float(baseline))
            if not isinstance(baseline, Tensor)
            else (baseline.to(x).expand_as(x))
        )
    if notion == "probabilistic":
        return _training_uniform(x.shape, lo, hi, x, gen)
    # robust: PGD restricted to the complement, attacking the model's own prediction
    free = keep < 0.5
    z = (x + _training_uniform(x.shape, -eps, eps, x, gen)).clamp(lo, hi)
    lower, upper = (x - eps).clamp(lo, hi), (x + eps).clamp(lo, hi)  # ball and range, once
    for _ in range(steps):
        z.requires_grad_(True)
        loss = F.cross_entropy(model(torch.where(free, z, x)), target)
        (g,) = torch.autograd.grad(loss, z)
        z = torch.clamp(z.detach() + alpha * g.sign(), lower, upper)
    return z.detach()


def sst_loss(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    notion: str = "baseline",
    xi: float = 1.0,
    lam: float = 1.0,
    tau: float = 0.5,
    threshold: str = "ste",
    baseline: float | Tensor = 0.0,
    eps: float = 0.12,
    alpha: float = 0.01,
    steps: int = 10,
    bounds: tuple[float, float] = (0.0, 1.0),
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """SST objective ``CE(f(x), y) + lam * CE(f(x_S; z_S̄), argmax f(x)) + xi * mean(s)``.

    Args:
        model: has ``logits_and_scores(x) -> (logits (B, C), scores (B, *shape))``.
        x, y: a batch ``(B, *shape)`` and labels ``(B,)``.
        notion: how ``z`` fills the complement while training: baseline / probabilistic
            (uniform on ``bounds``) / robust (PGD with ``eps``, ``alpha``, ``steps``).
        threshold: ``"ste"`` (straight-through: trains the mask) or ``"hard"`` (the released
            code's no-gradient threshold).

    Returns:
        ``(total, ce, faithfulness, size)``: the loss to minimise and three detached scalars
        (``size`` = mean fraction of features kept in this batch). ``train.fit`` accepts it.
    """
    check_notion(notion)
    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {THRESHOLDS}, got {threshold!r}")
    if not hasattr(model, "logits_and_scores"):
        raise TypeError(
            "model must have logits_and_scores(x) -> (logits, scores), e.g. DualHeadMLP"
        )
    if notion == "robust":
        check_pgd(eps, alpha, steps)
    validation.check_number("xi", xi, low=0.0)
    validation.check_number("lam", lam, low=0.0)
    _check_tau(tau)
    logits, scores = model.logits_and_scores(x)
    ce = F.cross_entropy(logits, y)
    target = logits.argmax(dim=1).detach()  # faithful to the model's own prediction
    keep = (straight_through if threshold == "ste" else hard_threshold)(scores, tau)
    fill = _training_fill(
        model, x, keep.detach(), target, notion, baseline, eps, alpha, steps, bounds, generator
    )
    # a product, not torch.where: the straight-through gradient reaches the mask through it
    faith = F.cross_entropy(model(keep * x + (1 - keep) * fill), target)
    cardinality = scores.mean()
    total = ce + lam * faith + xi * cardinality
    return total, ce.detach(), faith.detach(), keep.detach().mean()


def _check_tau(tau) -> float:
    """The mask threshold on sigmoid scores: a number in [0, 1] (above 1 nothing is ever kept)."""
    try:
        return validation.check_number("tau", tau, low=0.0, high=1.0)
    except TypeError as err:
        raise ValueError(f"{err} (a number in [0, 1])") from None


def sst_explain(model: nn.Module, x: Tensor, tau: float = 0.5) -> Tensor:
    """The SST explanation: one forward pass, ``scores >= tau``; bool ``(N, *shape)``."""
    _check_tau(tau)
    with evaluating(model), torch.no_grad():
        return model.scores(x) >= tau


def _adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam with the fused kernel where torch has one for these parameters (a quarter faster per
    step on a CPU for these small networks; the same algorithm), plain Adam otherwise."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr)


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
    from hvnotes.algorithms import SST  # the algorithms call this module: import late
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
    # sst_loss names PGD's iterations `steps`; the registry `pgd_steps` (`steps` trains)
    hparams = {"pgd_steps" if k == "steps" else k: v for k, v in loss_kw.items()}
    algorithm = SST(model, hparams | {"lr": lr, "seed": seed}, optimizer=_adam(model, lr))

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
