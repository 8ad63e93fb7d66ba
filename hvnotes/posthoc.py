"""Post-hoc explanations to compare SST with (notebook 04), judged by the same checker.

* :func:`greedy_sis`: SIS-style backward selection (Carter et al. 2019);
* :func:`attribution` + :func:`topk_search`: rank features by saliency or Integrated Gradients
  (Captum), keep the smallest top-k set that the checker accepts (:func:`topk_grid_search`: the
  same on a grid of sizes, every row at once, affordable under the robust notion);
* :func:`time_per_explanation`: seconds per explanation, warm, for any explainer.

Every search asks :func:`hvnotes.sufficiency.row_sufficiency` whether a subset suffices, so the
baselines and SST's own explanations are judged alike. ``model`` may be a module (switched to
eval mode and restored, also on an error) or any callable mapping inputs to logits.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd
import torch
from torch import Tensor, nn

from hvnotes import validation
from hvnotes.notions import check_baseline, check_notion, check_x
from hvnotes.sufficiency import _predict, row_sufficiency
from hvnotes.train import evaluating

#: the checker keywords a search may pass on to :func:`~hvnotes.sufficiency.row_sufficiency`
_CHECK_KW = {
    "n_draws", "pool", "eps", "alpha", "steps", "restarts", "any_iterate", "bounds", "generator",
}  # fmt: skip


def _check_min_rate(min_rate) -> float:
    """The pass mark of a sufficiency rate: a number in [0, 1] (above 1 nothing ever passes)."""
    return validation.check_number("min_rate", min_rate, low=0.0, high=1.0)


def _tail_masks(order: Tensor, shape) -> Tensor:
    """Row k keeps the ``k`` features ranked first in ``order`` (k = 0..n): ``(n + 1, *shape)``."""
    n = order.numel()
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n, device=order.device)
    return (rank[None, :] < torch.arange(n + 1, device=order.device)[:, None]).view(n + 1, *shape)


def _smallest_sufficient(model, x_row, order, notion, min_rate, check_kw) -> Tensor:
    """Among the prefixes of ``order`` (most important first), the shortest that passes."""
    masks = _tail_masks(order, x_row.shape)
    rates = row_sufficiency(
        model, x_row.expand(len(masks), *x_row.shape), masks, notion, **check_kw
    )
    passing = (rates >= min_rate).nonzero()
    return masks[passing[0, 0]] if len(passing) else masks[-1]


def greedy_sis(
    model: nn.Module,
    x: Tensor,
    notion: str = "baseline",
    *,
    baseline: float = 0.0,
    timeout: float = 60.0,
    min_rate: float = 1.0,
    clock: Callable[[], float] = time.perf_counter,
    skip_at_fill: bool = True,
    **check_kw,
) -> tuple[Tensor, pd.DataFrame]:
    """SIS-style backward selection (Carter et al. 2019), one explanation per row of ``x``.

    For each row: starting from all features, repeatedly mask (set to ``baseline``) the feature
    whose masking keeps the predicted class's probability highest — all candidates of one step
    in one batch, so ~n²/2 masked forward passes per explanation. The features masked last are
    the most important; the explanation is the shortest such tail that passes the checker
    (``row_sufficiency(notion, **check_kw) >= min_rate``, all tails checked in one batch).

    Features already equal to ``baseline`` are removed first and for free (``skip_at_fill``):
    masking them changes nothing, so on an MNIST digit (81 % background) the search is many
    times cheaper than eliminating every pixel (``skip_at_fill=False``, the naive baseline).

    A row whose elimination exceeds ``timeout`` seconds is *counted*, not dropped: it gets the
    full mask (trivially sufficient, size 100 %) and ``timed_out=True``. The time-out is wall
    clock; the reported ``seconds`` use ``clock`` (e.g. ``time.process_time`` on a shared CPU).

    Returns:
        ``keep`` bool ``(N, *shape)`` and a DataFrame with ``seconds``, ``timed_out``, ``size``.
    """
    check_notion(notion)
    x = check_x(x)
    check_baseline(baseline)
    validation.check_number("timeout", timeout, low=0.0)
    _check_min_rate(min_rate)
    unknown = sorted(set(check_kw) - _CHECK_KW)
    if unknown:
        raise TypeError(
            f"greedy_sis got unknown keyword arguments {unknown}; expected {sorted(_CHECK_KW)}"
        )
    with evaluating(model):
        return _greedy_sis(
            model, x, notion, baseline, timeout, min_rate, clock, skip_at_fill, check_kw
        )


def _greedy_sis(model, x, notion, baseline, timeout, min_rate, clock, skip_at_fill, check_kw):
    keeps, rows = [], []
    for x_row in x:
        start, start_clock = time.perf_counter(), clock()
        with torch.no_grad():
            cls = model(x_row[None]).argmax(1).item()
            cur = x_row.flatten().clone()
            fill = torch.full_like(cur, float(baseline))
            # a feature already at the fill value changes nothing when masked: it goes first,
            # for free (skip_at_fill), instead of costing an elimination step
            free = (cur == fill) if skip_at_fill else torch.zeros_like(cur, dtype=torch.bool)
            alive = ~free
            order = list(free.nonzero().squeeze(1))
            expired = False
            for _ in range(int(alive.sum())):
                cand = alive.nonzero().squeeze(1)
                batch = cur.repeat(len(cand), 1)
                batch[torch.arange(len(cand)), cand] = fill[cand]
                prob = model(batch.view(-1, *x_row.shape)).softmax(1)[:, cls]
                j = cand[prob.argmax()]
                alive[j], cur[j] = False, fill[j]
                order.append(j)
                if time.perf_counter() - start > timeout:
                    expired = True
                    break
        if expired:
            keep = torch.ones_like(x_row, dtype=torch.bool)
        else:
            importance = torch.stack(order).flip(0)  # removed last = most important
            keep = _smallest_sufficient(
                model, x_row, importance, notion, min_rate, dict(baseline=baseline, **check_kw)
            )
        keeps.append(keep)
        rows.append(
            {
                "seconds": clock() - start_clock,
                "timed_out": expired,
                "size": keep.float().mean().item(),
            }
        )
    return torch.stack(keeps), pd.DataFrame(rows)


def attribution(model: nn.Module, x: Tensor, method: str = "saliency", n_steps: int = 32) -> Tensor:
    """Captum attributions for the predicted class, same shape as ``x``.

    ``"saliency"``: ``|∂f_c/∂x|``; ``"ig"``: Integrated Gradients from the all-zero baseline
    (``n_steps`` Riemann steps).
    """
    from captum.attr import IntegratedGradients, Saliency

    x = check_x(x)
    if method not in ("saliency", "ig"):
        raise ValueError(f"method must be 'saliency' or 'ig', got {method!r}")
    with evaluating(model):
        target = _predict(model, x)
        if method == "saliency":
            attr = Saliency(model).attribute(
                x.clone().requires_grad_(True), target=target, abs=True
            )
        else:
            attr = IntegratedGradients(model).attribute(
                x, baselines=torch.zeros_like(x), target=target, n_steps=n_steps
            )
    return attr.detach()


def topk_search(
    model: nn.Module,
    x: Tensor,
    attributions: Tensor,
    notion: str = "baseline",
    *,
    min_rate: float = 1.0,
    **check_kw,
) -> Tensor:
    """Top-k attribution explanations: per row, the smallest k whose top-k set passes the checker.

    Features are ranked by ``|attributions|`` (``(N, *shape)``); every k = 0..n is checked in
    one batch (a linear scan, because sufficiency need not be monotone in k). Returns bool
    ``(N, *shape)``; a row where no k < n passes gets the full mask.
    """
    check_notion(notion)
    x = check_x(x)
    if not isinstance(attributions, Tensor) or attributions.shape != x.shape:
        raise ValueError(f"attributions must have x's shape {tuple(x.shape)}")
    validation.check_tensor("attributions", attributions)
    _check_min_rate(min_rate)
    keeps = []
    with evaluating(model):
        for x_row, a_row in zip(x, attributions, strict=True):
            order = a_row.abs().flatten().argsort(descending=True, stable=True)
            keeps.append(_smallest_sufficient(model, x_row, order, notion, min_rate, check_kw))
    return torch.stack(keeps)


def size_grid(n: int, per_doubling: int = 4) -> list[int]:
    """Subset sizes ``0, 1, 2, ...`` up to ``n``, spaced geometrically: ``per_doubling`` sizes per
    doubling (a relative resolution of ``2 ** (1 / per_doubling)``), ``n`` always included."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if isinstance(per_doubling, bool) or not isinstance(per_doubling, int) or per_doubling < 1:
        raise ValueError(f"per_doubling must be a positive int, got {per_doubling!r}")
    sizes, k = {0, n}, 0
    while True:
        k += 1
        size = round(2 ** (k / per_doubling))
        if size >= n:
            break
        sizes.add(size)
    return sorted(sizes)


def topk_grid_search(
    model: nn.Module,
    x: Tensor,
    attributions: Tensor,
    notion: str = "baseline",
    *,
    ks: list[int] | None = None,
    min_rate: float = 1.0,
    **check_kw,
) -> Tensor:
    """Top-k attribution explanations with ``k`` on a grid, every row of ``x`` searched at once.

    Features are ranked by ``|attributions|`` (``(N, *shape)``); for each ``k`` of ``ks``
    (default :func:`size_grid`), smallest first, the top-k sets of the rows that have not passed
    yet are checked together (``row_sufficiency(notion, **check_kw) >= min_rate``); a row keeps
    the first ``k`` that passes, or the full mask. Every grid ``k`` is checked (a linear scan:
    sufficiency need not be monotone in ``k``), so the answer is :func:`topk_search`'s restricted
    to the grid, at a cost of one batched check per grid size instead of one per row. Under the
    robust notion this is what makes a search over hundreds of images affordable. Returns bool
    ``(N, *shape)``.
    """
    check_notion(notion)
    x = check_x(x)
    if not isinstance(attributions, Tensor) or attributions.shape != x.shape:
        raise ValueError(f"attributions must have x's shape {tuple(x.shape)}")
    unknown = sorted(set(check_kw) - _CHECK_KW - {"baseline"})
    if unknown:
        raise TypeError(f"topk_grid_search got unknown keyword arguments {unknown}")
    n = x[0].numel()
    ks = size_grid(n) if ks is None else sorted({int(k) for k in ks})
    if not ks or ks[0] < 0 or ks[-1] > n:
        raise ValueError(f"ks must be sizes in [0, {n}], got {ks!r}")
    order = attributions.abs().flatten(1).argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n, device=x.device).expand_as(order))
    keep = torch.ones_like(x, dtype=torch.bool)
    open_rows = torch.arange(len(x), device=x.device)
    with evaluating(model):
        for k in ks:
            if len(open_rows) == 0:
                break
            masks = (rank[open_rows] < k).view(len(open_rows), *x.shape[1:])
            rates = row_sufficiency(model, x[open_rows], masks, notion, **check_kw)
            passed = rates >= min_rate
            keep[open_rows[passed]] = masks[passed]
            open_rows = open_rows[~passed]
    return keep


def time_per_explanation(
    explain: Callable[[Tensor], object],
    x: Tensor,
    *,
    batch_size: int = 1,
    warmup: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Seconds per explanation of ``explain(batch)`` over the rows of ``x``, warm.

    ``warmup`` batches are run first and not timed; then every row of ``x`` is explained in
    batches of ``batch_size``; CUDA is synchronised before reading the clock. ``clock`` is wall
    time by default; on a CPU shared with other jobs ``time.process_time`` (this process's CPU
    time) is the fairer measure.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    for i in range(warmup):
        explain(x[i * batch_size : (i + 1) * batch_size])
    sync()
    start = clock()
    for i in range(0, len(x), batch_size):
        explain(x[i : i + batch_size])
    sync()
    return (clock() - start) / len(x)


def exact_minimal_subsets(
    model, x: Tensor, baseline: float = 0.0, max_features: int = 20, batch_size: int = 2**15
) -> Tensor:
    """Cardinally minimal baseline-sufficient subsets, by trying every one of the ``2^n`` subsets.

    The ground truth that SST and the post-hoc searches approximate (finding it is intractable in
    general, which is the point of the paper): for each row of ``x`` ``(N, *shape)`` with
    ``n = prod(shape) <= max_features`` features, the smallest ``S`` with
    ``f(x_S; baseline) = f(x)``, ties broken by the order of enumeration. Returns bool
    ``(N, *shape)``; the full set always qualifies, so every row gets an answer.
    """
    x = check_x(x)
    check_baseline(baseline)
    n = x[0].numel()
    if n > max_features:
        raise ValueError(
            f"x has {n} features per row; enumerating 2^{n} subsets needs n <= {max_features}"
        )
    codes = torch.arange(2**n, device=x.device)
    subsets = (codes[:, None] >> torch.arange(n, device=x.device)) & 1  # (2^n, n)
    order = subsets.sum(1).argsort(stable=True)  # smallest subsets first
    subsets = subsets[order].bool()
    out = []
    with evaluating(model):
        target = _predict(model, x)
        for row, cls in zip(x.flatten(1), target, strict=True):
            best = None
            for start in range(0, len(subsets), batch_size):
                masks = subsets[start : start + batch_size]
                filled = torch.where(masks, row, torch.full_like(row, float(baseline)))
                hits = (_predict(model, filled.view(-1, *x.shape[1:])) == cls).nonzero()
                if len(hits):
                    best = masks[hits[0, 0]]
                    break
            out.append(best.view(x.shape[1:]))
    return torch.stack(out)
