"""The sufficiency checker (notebook 04): does a subset keep the prediction when the rest is filled?

It shares no code with SST training (:mod:`hvnotes.sst`), so a bug in how training builds masked
inputs cannot make the evaluation agree with it. The fills live in
:mod:`hvnotes.complement_fills` (:func:`complement` fills the rest for the baseline and
probabilistic notions, :func:`pgd_complement` attacks it for the robust notion) and are
re-exported here (``sufficiency.complement`` and the twins' targets
``hvnotes.sufficiency:complement`` / ``hvnotes.sufficiency:pgd_complement`` keep working). This
module counts: :func:`sufficiency_rate` / :func:`row_sufficiency` say how often the predicted
class survives, :func:`evaluate_notions` gives one row of notebook 04's cross table, and
:func:`random_mask_like`, :func:`credit_over_random`, :func:`mask_transplant`,
:func:`silhouette_reading` and :func:`drop_one_redundancy` are its controls. The notions and
their argument checks are in :mod:`hvnotes.notions`.

``model`` may be a module or any callable mapping inputs to logits (Captum's ``forward_func``
convention); a module is switched to eval mode and restored, also when a check raises.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from hvnotes import seeding, validation
from hvnotes.complement_fills import (  # noqa: F401  (re-exported: their old home)
    _logits,
    _predict,
    _uniform,
    complement,
    pgd_complement,
    project,
)
from hvnotes.notions import (  # noqa: F401  (check_bounds: importable from here before the split)
    check_baseline,
    check_bounds,
    check_data_in_bounds,
    check_generator,
    check_keep,
    check_notion,
    check_pgd,
    check_x,
)
from hvnotes.validation import check_input_dtype, evaluating


def explanation_size(keep: Tensor) -> Tensor:
    """Fraction of features kept, per row: ``keep (N, *shape)`` -> ``(N,)`` in [0, 1]."""
    return keep.flatten(1).float().mean(dim=1)


def row_sufficiency(
    model: nn.Module,
    x: Tensor,
    keep: Tensor,
    notion: str,
    *,
    baseline: float | Tensor = 0.0,
    n_draws: int = 10,
    pool: Tensor | None = None,
    eps: float = 0.12,
    alpha: float = 0.01,
    steps: int = 10,
    restarts: int = 1,
    any_iterate: bool = False,
    bounds: tuple[float, float] = (0.0, 1.0),
    generator: torch.Generator | None = None,
) -> Tensor:
    """Per row, the fraction of complement fills that keep the model's prediction on ``x``.

    baseline: 0 or 1 (one fill). probabilistic: mean over ``n_draws`` draws. robust: 1 only if
    the prediction survives PGD from every one of ``restarts`` random starts — at the last
    iterate, or with ``any_iterate=True`` at every iterate of every restart (the stricter, and
    correct, reading of "for all z"). Returns ``(N,)``. The model is evaluated in eval mode on
    freshly built inputs.
    """
    check_notion(notion)
    x = check_x(x)
    keep = check_keep(x, keep)
    check_generator(generator)
    check_baseline(baseline)
    check_input_dtype(model, x)
    if notion == "probabilistic":
        n_draws = validation.check_positive_int("n_draws", n_draws)
        if pool is None:
            check_data_in_bounds(x, bounds)
    if notion == "robust":
        check_pgd(eps, alpha, steps)
        steps = validation.check_integer("steps", steps)
        restarts = validation.check_positive_int("restarts", restarts)
        check_data_in_bounds(x, bounds)
    with evaluating(model):
        return _row_sufficiency(
            model, x, keep, notion, baseline, n_draws, pool, eps, alpha, steps, restarts,
            any_iterate, bounds, generator,
        )  # fmt: skip


def _row_sufficiency(
    model, x, keep, notion, baseline, n_draws, pool, eps, alpha, steps, restarts, any_iterate,
    bounds, generator,
) -> Tensor:  # fmt: skip
    reference = _predict(model, x)
    if notion == "baseline":
        out = (_predict(model, complement(x, keep, "baseline", baseline)) == reference).float()
    elif notion == "probabilistic":
        out = torch.zeros(len(x), device=x.device)
        for _ in range(n_draws):
            z = complement(x, keep, "probabilistic", generator=generator, bounds=bounds, pool=pool)
            out += (_predict(model, z) == reference).float()
        out /= n_draws
    else:
        out = torch.ones(len(x), device=x.device)
        for _ in range(restarts):
            z, held = pgd_complement(
                model, x, keep, reference, eps, alpha, steps, generator, bounds=bounds, track=True
            )
            out *= held.float() if any_iterate else (_predict(model, z) == reference).float()
    return out


def sufficiency_rate(model: nn.Module, x: Tensor, keep: Tensor, notion: str, **kw) -> float:
    """Fraction of rows whose predicted class survives filling the complement by ``notion``.

    ``notion`` ∈ {"baseline", "probabilistic", "robust"}; ``kw`` as in ``row_sufficiency``
    (``baseline``, ``n_draws``/``pool``, ``eps``/``alpha``/``steps``/``restarts``, ``generator``).
    For "probabilistic" it is the mean over rows of the per-row rate over ``n_draws`` draws.
    """
    return row_sufficiency(model, x, keep, notion, **kw).mean().item()


def evaluate_notions(
    model: nn.Module,
    x: Tensor,
    keep: Tensor,
    *,
    seed: int | None = None,
    n_draws: int = 10,
    eps: float = 0.12,
    alpha: float = 0.01,
    pgd_steps: tuple[int, ...] = (10, 100),
    any_iterate: bool = False,
    restarts: int = 1,
    pool: Tensor | None = None,
) -> dict[str, float]:
    """One row of the cross table: ``keep``'s size and its sufficiency under every notion.

    Returns ``size`` (mean fraction kept), ``baseline``, ``probabilistic`` (uniform fills,
    ``n_draws``), ``data fill`` when a ``pool (M, *shape)`` of real inputs is given (each fill
    the pixels of a random pool image), and ``PGD-k`` for each ``k`` in ``pgd_steps`` (ε =
    ``eps``, step ``alpha``, ``restarts`` random starts, every iterate checked when
    ``any_iterate``). Seeded: the same arguments give the same numbers.
    """
    g = seeding.generator(seed)
    row = {
        "size": explanation_size(check_keep(check_x(x), keep)).mean().item(),
        "baseline": sufficiency_rate(model, x, keep, "baseline"),
        "probabilistic": sufficiency_rate(
            model, x, keep, "probabilistic", n_draws=n_draws, generator=g
        ),
    }
    if pool is not None:
        row["data fill"] = sufficiency_rate(
            model, x, keep, "probabilistic", n_draws=n_draws, pool=pool, generator=g
        )
    for steps in pgd_steps:
        row[f"PGD-{steps}"] = sufficiency_rate(
            model, x, keep, "robust", eps=eps, alpha=alpha, steps=steps, restarts=restarts,
            any_iterate=any_iterate, generator=g,
        )  # fmt: skip
    return row


def credit_over_random(
    rate: Callable[[Tensor], float],
    keep: Tensor,
    generator: torch.Generator | None = None,
    draws: int = 1,
) -> float:
    """How much an explanation adds over a mask that selects nothing in particular.

    ``rate(mask) -> float`` is a sufficiency rate (any notion, one model, fixed inputs);
    ``keep (N, *shape)`` the explanation. Returns ``rate(keep)`` minus the mean of
    ``rate(random_mask_like(keep))`` over ``draws`` random masks with as many features per row.
    It is about 0 for a random or an empty explanation, and for any explanation of a network
    whose prediction survives whatever is kept (a robust network, a constant one): the part of
    a rate that the network earns on its own, or that size alone buys, cancels out.
    """
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be a positive int, got {draws!r}")
    control = sum(rate(random_mask_like(keep, generator)) for _ in range(draws)) / draws
    return float(rate(keep)) - float(control)


def random_mask_like(keep: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """A control: per row, a uniformly random mask with as many kept features as ``keep``."""
    flat = keep.flatten(1)
    device = generator.device if generator is not None else keep.device
    order = torch.rand(flat.shape, generator=generator, device=device).argsort(1)
    ranks = torch.empty_like(order)  # the rank of every feature in its row's random order
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=device).expand_as(order))
    return (ranks.to(keep.device) < flat.sum(1, keepdim=True)).view(keep.shape)


def mask_transplant(
    model: nn.Module,
    x: Tensor,
    keep: Tensor,
    baseline: float = 0.0,
    seed: int | None = None,
    shape_value: float = 0.25,
) -> dict[str, float]:
    """Does the *shape* of a mask encode the class? Put image A's mask on image B's pixels.

    Pairs each row A with a random other row B whose predicted class differs, builds
    ``(x_B on S_A; baseline elsewhere)`` and reports how often the model then predicts A's class
    (the mask's owner) and B's class (the pixels' owner), and the number of pairs. The control
    ``shape_only_owner_class`` shows the model only A's mask itself, drawn at ``shape_value`` on
    ``S_A`` (a dim grey, far from the ink of a stroke) and ``baseline`` elsewhere: no pixel of
    any digit, so a model that reads pixel values sees next to nothing, and one that predicts A's
    class from it reads the mask's shape as a code.
    """
    x = check_x(x)
    keep = check_keep(x, keep)
    with evaluating(model):
        pred = _predict(model, x)
        perm = torch.randperm(len(x), generator=seeding.generator(seed)).to(x.device)
        pairs = pred != pred[perm]
        if not pairs.any():
            raise ValueError(
                "mask_transplant needs a pair of rows whose predicted classes differ; the model "
                f"predicts class {int(pred[0])} for every row of x (or every drawn pair agrees)"
            )
        a, b = torch.arange(len(x), device=x.device)[pairs], perm[pairs]
        out = _predict(model, complement(x[b], keep[a], "baseline", baseline))
        # the control that isolates encoding: A's mask alone, drawn at a dim flat grey
        shape_only = _predict(
            model, torch.where(keep[a], float(shape_value), float(baseline)).to(x)
        )
    return {
        "mask_owner_class": (out == pred[a]).float().mean().item(),
        "pixel_owner_class": (out == pred[b]).float().mean().item(),
        "shape_only_owner_class": (shape_only == pred[a]).float().mean().item(),
        "pairs": int(pairs.sum()),
    }


def silhouette_reading(
    reader, keep: Tensor, classes: Tensor, value: float = 0.25, baseline: float = 0.0
) -> float:
    """Does a mask's bare shape name a class? ``reader`` sees only the silhouette of each mask.

    Each row of ``keep (N, *shape)`` is drawn as a flat image: ``value`` (a dim grey, far from
    the ink of a stroke) on the kept features, ``baseline`` elsewhere, no pixel of any input.
    Returns the fraction of rows where ``reader`` (a model, or any callable giving logits)
    predicts ``classes (N,)`` — e.g. the class the mask's owner predicted for its own input. Hold
    the masks fixed and swap the reader to ask *who* can read the class off the shape: a reader
    that never saw a mask in training reads it only if the shape itself looks like the class.
    """
    if not isinstance(keep, Tensor) or keep.dtype != torch.bool or keep.ndim < 2:
        raise TypeError("keep must be a bool Tensor of shape (N, *shape)")
    if not isinstance(classes, Tensor) or classes.shape != keep.shape[:1]:
        raise ValueError(f"classes must be a Tensor of shape ({len(keep)},)")
    image = torch.where(keep, float(value), float(baseline)).float()
    with evaluating(reader):
        return (_predict(reader, image) == classes.to(image.device)).float().mean().item()


def drop_one_redundancy(model, x: Tensor, keep: Tensor, baseline: float = 0.0) -> Tensor:
    """Minimality under the baseline notion: per row, the share of kept features that could go.

    For each row whose subset ``S`` is baseline-sufficient, every kept feature is dropped in turn
    (one batch per row); the result is the fraction of them whose removal leaves ``S`` still
    sufficient — features the explanation names but does not need. 0 for a minimal subset;
    NaN for a row whose ``S`` is empty or not sufficient in the first place. Returns ``(N,)``.
    """
    x = check_x(x)
    keep = check_keep(x, keep)
    check_baseline(baseline)
    out = torch.full((len(x),), float("nan"), device=x.device)
    with evaluating(model):
        sufficient = _row_sufficiency(
            model, x, keep, "baseline", baseline, 1, None, 0.0, 1.0, 0, 1, False, (0.0, 1.0), None
        )  # fmt: skip
        for i in range(len(x)):
            kept = keep[i].flatten().nonzero().squeeze(1)
            if sufficient[i] < 1 or len(kept) == 0:
                continue
            masks = keep[i].flatten().repeat(len(kept), 1)
            masks[torch.arange(len(kept)), kept] = False
            rows = x[i].expand(len(kept), *x.shape[1:])
            still = _row_sufficiency(
                model, rows, masks.view(rows.shape), "baseline", baseline, 1, None, 0.0, 1.0, 0,
                1, False, (0.0, 1.0), None,
            )  # fmt: skip
            out[i] = still.mean()
    return out
