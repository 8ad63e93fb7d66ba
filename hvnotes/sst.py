"""Sufficient Subset Training (Bassan, Eliav & Gur, ICLR 2025) and honest sufficiency checks.

A *sufficient reason* for a prediction ``f(x)`` is a subset ``S`` of the input features such that
fixing ``x_S`` and filling the complement ``S̄`` some other way keeps the predicted class. How the
complement is filled is the *notion* of sufficiency:

* ``"baseline"``: a fixed value (0 = the MNIST background);
* ``"probabilistic"``: a draw from the input domain (uniform on the input range by default, or
  whole training images via ``pool=``), reported as the rate over ``n_draws`` draws;
* ``"robust"``: the worst case in an ℓ∞ ball of radius ``eps`` around ``x``, found by PGD.

SST trains one network with two heads (``models.DualHeadMLP``): class logits and a score per
feature. The explanation is ``S = {i : s_i >= tau}``; training adds a *faithfulness* term (the
prediction on ``(x_S; z_S̄)`` must equal the model's own prediction) and a *cardinality* term
(mean score) to the cross-entropy.

This file has two halves that deliberately share no code, so a bug in how training builds
masked inputs cannot make the evaluation agree with it:

1. training: ``hard_threshold`` (the released code: no gradient), ``straight_through``,
   ``sst_loss``, ``train_sst``;
2. checking: ``complement``, ``pgd_complement``, ``row_sufficiency``/``sufficiency_rate``, and
   the post-hoc searches ``greedy_sis`` and ``topk_search`` judged by the same checker.

Shapes: inputs ``x`` are ``(N, *shape)`` (``(N, 28, 28)`` for MNIST); a mask ``keep`` is a bool
tensor broadcastable to ``x`` (usually the same shape); ``True`` = the feature is in ``S``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hvnotes import seeding

NOTIONS = ("baseline", "probabilistic", "robust")
THRESHOLDS = ("ste", "hard")


# ---------------------------------------------------------------------------------------------
# argument checks (shared by both halves: they only validate, they compute nothing)
# ---------------------------------------------------------------------------------------------


def _check_notion(notion) -> str:
    if notion not in NOTIONS:
        raise ValueError(f"notion must be one of {NOTIONS}, got {notion!r}")
    return notion


def _check_x(x) -> Tensor:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim < 2:
        raise TypeError("x must be a float Tensor of shape (N, *shape)")
    return x


def _check_keep(x: Tensor, keep) -> Tensor:
    """``keep`` as a bool tensor of exactly ``x.shape`` (broadcasting may not change x's shape)."""
    if not isinstance(keep, Tensor) or keep.dtype != torch.bool:
        raise TypeError(
            f"keep must be a bool Tensor broadcastable to x {tuple(x.shape)}, "
            f"got {type(keep).__name__}{'' if not isinstance(keep, Tensor) else ' of ' + str(keep.dtype)}"
        )
    try:
        shape = torch.broadcast_shapes(keep.shape, x.shape)
    except RuntimeError:
        shape = None
    if shape != x.shape:
        raise ValueError(
            f"keep has shape {tuple(keep.shape)}, which does not broadcast to x's shape "
            f"{tuple(x.shape)}; pass a mask of shape {tuple(x.shape)} or {tuple(x.shape[1:])}"
        )
    return keep.to(x.device).expand_as(x)


def _check_bounds(bounds) -> tuple[float, float]:
    lo, hi = (float(b) for b in bounds)
    if not lo < hi:
        raise ValueError(f"bounds must be (low, high) with low < high, got {bounds!r}")
    return lo, hi


def _check_pgd(eps, alpha, steps) -> None:
    if isinstance(eps, bool) or not isinstance(eps, int | float) or eps < 0:
        raise ValueError(f"eps must be a number >= 0, got {eps!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or alpha <= 0:
        raise ValueError(f"alpha (the PGD step) must be a number > 0, got {alpha!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")


def _uniform(shape, lo: float, hi: float, like: Tensor, generator) -> Tensor:
    """U[lo, hi) of ``shape``, drawn on the generator's device, returned on ``like``'s."""
    device = generator.device if generator is not None else like.device
    u = torch.rand(shape, generator=generator, device=device, dtype=like.dtype)
    return (lo + (hi - lo) * u).to(like.device)


def explanation_size(keep: Tensor) -> Tensor:
    """Fraction of features kept, per row: ``keep (N, *shape)`` -> ``(N,)`` in [0, 1]."""
    return keep.flatten(1).float().mean(dim=1)


# ---------------------------------------------------------------------------------------------
# 1. training
# ---------------------------------------------------------------------------------------------


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
        return _uniform(x.shape, lo, hi, x, gen)
    # robust: PGD restricted to the complement, attacking the model's own prediction
    free = keep < 0.5
    z = (x + _uniform(x.shape, -eps, eps, x, gen)).clamp(lo, hi)
    for _ in range(steps):
        z.requires_grad_(True)
        loss = F.cross_entropy(model(torch.where(free, z, x)), target)
        (g,) = torch.autograd.grad(loss, z)
        z = torch.min(torch.max(z.detach() + alpha * g.sign(), x - eps), x + eps).clamp(lo, hi)
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
    _check_notion(notion)
    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {THRESHOLDS}, got {threshold!r}")
    if not hasattr(model, "logits_and_scores"):
        raise TypeError(
            "model must have logits_and_scores(x) -> (logits, scores), e.g. DualHeadMLP"
        )
    if notion == "robust":
        _check_pgd(eps, alpha, steps)
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


def sst_explain(model: nn.Module, x: Tensor, tau: float = 0.5) -> Tensor:
    """The SST explanation: one forward pass, ``scores >= tau``; bool ``(N, *shape)``."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        keep = model.scores(x) >= tau
    model.train(was_training)
    return keep


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
    seed: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
    **loss_kw,
) -> pd.DataFrame:
    """Train ``model`` with ``sst_loss(**loss_kw)`` (Adam, ``train.fit`` one epoch at a time).

    Before training (epoch 0) and after each epoch, on ``(x_eval, y_eval)``: accuracy,
    explanation size (fraction of features) and baseline faithfulness, measured by the *checker*
    (``sufficiency_rate``), not by training code. Returns one row per epoch with ``loss`` and
    ``seconds`` (training time of the epoch by ``clock``, evaluation excluded).
    """
    from functools import partial

    from hvnotes.train import accuracy, fit

    seed = seeding.resolve_seed(seed)
    generator = seeding.generator(seed, device=x.device)
    loss_fn = partial(sst_loss, generator=generator, **loss_kw)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    tau = loss_kw.get("tau", 0.5)

    def evaluate(row: dict) -> dict:
        if x_eval is not None:
            keep = sst_explain(model, x_eval, tau)
            row["acc"] = accuracy(model, x_eval, y_eval)
            row["size"] = explanation_size(keep).mean().item()
            row["faith_baseline"] = sufficiency_rate(model, x_eval, keep, "baseline")
        return row

    rows = [evaluate({"epoch": 0, "loss": float("nan"), "seconds": 0.0})]  # the untrained model
    for epoch in range(1, epochs + 1):
        start = clock()
        hist = fit(
            model, x, y, epochs=1, batch_size=batch_size, loss_fn=loss_fn, optimizer=optimizer,
            seed=seed + epoch, progress=False,
        )  # fmt: skip
        seconds = clock() - start  # training only, evaluation excluded
        rows.append(
            evaluate({"epoch": epoch, "loss": float(hist["loss"].iloc[0]), "seconds": seconds})
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# 2. checking (no code shared with training)
# ---------------------------------------------------------------------------------------------


def complement(
    x: Tensor,
    keep: Tensor,
    mode: str,
    baseline: float | Tensor = 0.0,
    generator: torch.Generator | None = None,
    *,
    bounds: tuple[float, float] = (0.0, 1.0),
    pool: Tensor | None = None,
) -> Tensor:
    """``(x_S; z_S̄)``: keep ``x`` where ``keep`` is True, fill the rest.

    Args:
        x: ``(N, *shape)``.
        keep: bool, broadcastable to ``x`` without changing its shape.
        mode: ``"baseline"`` fills with ``baseline`` (a number, or a tensor broadcastable to x);
            ``"probabilistic"`` fills with a draw from the input domain: uniform on ``bounds``
            independently per feature, or, when ``pool (M, *shape)`` is given, the pixels of a
            random training image (one per row).
        generator: for the probabilistic draw.

    Returns:
        a new tensor of ``x``'s shape; kept features are bit-for-bit those of ``x``.
    """
    x = _check_x(x)
    keep = _check_keep(x, keep)
    if mode == "baseline":
        z = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
        if z.ndim and torch.broadcast_shapes(z.shape, x.shape) != x.shape:
            raise ValueError(f"baseline of shape {tuple(z.shape)} does not broadcast to x")
        z = z.expand_as(x)
    elif mode == "probabilistic":
        if pool is None:
            lo, hi = _check_bounds(bounds)
            z = _uniform(x.shape, lo, hi, x, generator)
        else:
            if pool.shape[1:] != x.shape[1:]:
                raise ValueError(
                    f"pool must have shape (M, {tuple(x.shape[1:])}), got {tuple(pool.shape)}"
                )
            device = generator.device if generator is not None else pool.device
            idx = torch.randint(len(pool), (len(x),), generator=generator, device=device)
            z = pool[idx.to(pool.device)].to(x)
    elif mode == "robust":
        raise ValueError("mode='robust' needs the model: use pgd_complement(model, x, keep, ...)")
    else:
        raise ValueError(f"mode must be 'baseline' or 'probabilistic', got {mode!r}")
    return torch.where(keep, x, z)


def project(
    x_adv: Tensor, x: Tensor, keep: Tensor, eps: float, bounds: tuple[float, float] = (0.0, 1.0)
) -> Tensor:
    """The PGD projection: nearest point to ``x_adv`` that a robust complement may take.

    Clip to the ℓ∞ ball of radius ``eps`` around ``x``, then to ``bounds``, then put the kept
    features back to ``x`` exactly. All tensors ``(N, *shape)``; ``keep`` bool.
    """
    lo, hi = _check_bounds(bounds)
    inside = torch.clamp(torch.min(torch.max(x_adv, x - eps), x + eps), lo, hi)
    return torch.where(_check_keep(x, keep), x, inside)


def pgd_complement(
    model: nn.Module,
    x: Tensor,
    keep: Tensor,
    target: Tensor,
    eps: float,
    alpha: float,
    steps: int,
    generator: torch.Generator | None = None,
    *,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> Tensor:
    """Projected gradient ascent on the complement: the robust filler ``(x_S; z_S̄)``.

    Random start ``U[-eps, eps]`` on ``S̄``; then ``steps`` times: a signed-gradient *ascent* step
    of size ``alpha`` on ``CE(model(x̃), target)``, projection onto the ℓ∞ ball of radius ``eps``
    around ``x`` and onto ``bounds``, and the kept features reset to ``x``. Returns the last
    iterate (detached). ``target (N,)`` should be the model's prediction on ``x``.
    """
    x = _check_x(x)
    keep = _check_keep(x, keep)
    _check_pgd(eps, alpha, steps)
    lo, hi = _check_bounds(bounds)
    if not isinstance(target, Tensor) or target.shape != x.shape[:1]:
        raise ValueError(f"target must be a class-index Tensor of shape ({len(x)},)")
    was_training = model.training
    model.eval()
    x_adv = torch.where(keep, x, (x + _uniform(x.shape, -eps, eps, x, generator)).clamp(lo, hi))
    with torch.enable_grad():
        for _ in range(steps):
            x_adv = x_adv.detach().requires_grad_(True)
            loss = F.cross_entropy(model(x_adv), target, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
            step = x_adv.detach() + alpha * grad.sign()  # ascent: make the prediction change
            x_adv = project(step, x, keep, eps, (lo, hi))
    model.train(was_training)
    return x_adv.detach()


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor, batch_size: int = 2048) -> Tensor:
    return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


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
    bounds: tuple[float, float] = (0.0, 1.0),
    generator: torch.Generator | None = None,
) -> Tensor:
    """Per row, the fraction of complement fills that keep the model's prediction on ``x``.

    baseline: 0 or 1 (one fill). probabilistic: mean over ``n_draws`` draws. robust: 1 only if
    the prediction survives PGD from every one of ``restarts`` random starts. Returns ``(N,)``.
    The model is evaluated in eval mode on freshly built inputs.
    """
    _check_notion(notion)
    x = _check_x(x)
    keep = _check_keep(x, keep)
    was_training = model.training
    model.eval()
    reference = _predict(model, x)
    if notion == "baseline":
        out = (_predict(model, complement(x, keep, "baseline", baseline)) == reference).float()
    elif notion == "probabilistic":
        if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 1:
            raise ValueError(f"n_draws must be a positive int, got {n_draws!r}")
        out = torch.zeros(len(x), device=x.device)
        for _ in range(n_draws):
            z = complement(x, keep, "probabilistic", generator=generator, bounds=bounds, pool=pool)
            out += (_predict(model, z) == reference).float()
        out /= n_draws
    else:
        if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
            raise ValueError(f"restarts must be a positive int, got {restarts!r}")
        out = torch.ones(len(x), device=x.device)
        for _ in range(restarts):
            z = pgd_complement(
                model, x, keep, reference, eps, alpha, steps, generator, bounds=bounds
            )
            out *= (_predict(model, z) == reference).float()
    model.train(was_training)
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
) -> dict[str, float]:
    """One row of the cross table: ``keep``'s size and its sufficiency under every notion.

    Returns ``size`` (mean fraction kept), ``baseline``, ``probabilistic`` (uniform fills,
    ``n_draws``) and ``PGD-k`` for each ``k`` in ``pgd_steps`` (ε = ``eps``, step ``alpha``).
    Seeded: the same arguments give the same numbers.
    """
    g = seeding.generator(seed)
    row = {
        "size": explanation_size(_check_keep(x, keep)).mean().item(),
        "baseline": sufficiency_rate(model, x, keep, "baseline"),
        "probabilistic": sufficiency_rate(
            model, x, keep, "probabilistic", n_draws=n_draws, generator=g
        ),
    }
    for steps in pgd_steps:
        row[f"PGD-{steps}"] = sufficiency_rate(
            model, x, keep, "robust", eps=eps, alpha=alpha, steps=steps, generator=g
        )
    return row


def random_mask_like(keep: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """A control: per row, a uniformly random mask with as many kept features as ``keep``."""
    flat = keep.flatten(1)
    device = generator.device if generator is not None else keep.device
    ranks = torch.rand(flat.shape, generator=generator, device=device).argsort(1).argsort(1)
    return (ranks.to(keep.device) < flat.sum(1, keepdim=True)).view(keep.shape)


def mask_transplant(
    model: nn.Module, x: Tensor, keep: Tensor, baseline: float = 0.0, seed: int | None = None
) -> dict[str, float]:
    """Does the *shape* of a mask encode the class? Put image A's mask on image B's pixels.

    Pairs each row A with a random other row B whose predicted class differs, builds
    ``(x_B on S_A; baseline elsewhere)`` and reports how often the model then predicts A's class
    (the mask's owner) and B's class (the pixels' owner), and the number of pairs.
    """
    x = _check_x(x)
    keep = _check_keep(x, keep)
    was_training = model.training
    pred = _predict(model.eval(), x)
    perm = torch.randperm(len(x), generator=seeding.generator(seed)).to(x.device)
    pairs = pred != pred[perm]
    a, b = torch.arange(len(x), device=x.device)[pairs], perm[pairs]
    out = _predict(model, complement(x[b], keep[a], "baseline", baseline))
    model.train(was_training)
    return {
        "mask_owner_class": (out == pred[a]).float().mean().item(),
        "pixel_owner_class": (out == pred[b]).float().mean().item(),
        "pairs": int(pairs.sum()),
    }


# ---------------------------------------------------------------------------------------------
# post-hoc baselines, judged by the same checker
# ---------------------------------------------------------------------------------------------


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
    **check_kw,
) -> tuple[Tensor, pd.DataFrame]:
    """SIS-style backward selection (Carter et al. 2019), one explanation per row of ``x``.

    For each row: starting from all features, repeatedly mask (set to ``baseline``) the feature
    whose masking keeps the predicted class's probability highest — all candidates of one step
    in one batch, so ~n²/2 masked forward passes per explanation. The features masked last are
    the most important; the explanation is the shortest such tail that passes the checker
    (``row_sufficiency(notion, **check_kw) >= min_rate``, all tails checked in one batch).

    A row whose elimination exceeds ``timeout`` seconds is *counted*, not dropped: it gets the
    full mask (trivially sufficient, size 100 %) and ``timed_out=True``. The time-out is wall
    clock; the reported ``seconds`` use ``clock`` (e.g. ``time.process_time`` on a shared CPU).

    Returns:
        ``keep`` bool ``(N, *shape)`` and a DataFrame with ``seconds``, ``timed_out``, ``size``.
    """
    _check_notion(notion)
    x = _check_x(x)
    was_training = model.training
    model.eval()
    keeps, rows = [], []
    for x_row in x:
        start, start_clock = time.perf_counter(), clock()
        with torch.no_grad():
            cls = model(x_row[None]).argmax(1).item()
            cur = x_row.flatten().clone()
            fill = torch.full_like(cur, float(baseline))
            alive = torch.ones_like(cur, dtype=torch.bool)
            order = []
            expired = False
            for _ in range(cur.numel()):
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
    model.train(was_training)
    return torch.stack(keeps), pd.DataFrame(rows)


def attribution(model: nn.Module, x: Tensor, method: str = "saliency", n_steps: int = 32) -> Tensor:
    """Captum attributions for the predicted class, same shape as ``x``.

    ``"saliency"``: ``|∂f_c/∂x|``; ``"ig"``: Integrated Gradients from the all-zero baseline
    (``n_steps`` Riemann steps).
    """
    from captum.attr import IntegratedGradients, Saliency

    was_training = model.training
    model.eval()
    target = _predict(model, x)
    if method == "saliency":
        attr = Saliency(model).attribute(x.clone().requires_grad_(True), target=target, abs=True)
    elif method == "ig":
        attr = IntegratedGradients(model).attribute(
            x, baselines=torch.zeros_like(x), target=target, n_steps=n_steps
        )
    else:
        raise ValueError(f"method must be 'saliency' or 'ig', got {method!r}")
    model.train(was_training)
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
    _check_notion(notion)
    x = _check_x(x)
    if not isinstance(attributions, Tensor) or attributions.shape != x.shape:
        raise ValueError(f"attributions must have x's shape {tuple(x.shape)}")
    keeps = []
    for x_row, a_row in zip(x, attributions, strict=True):
        order = a_row.abs().flatten().argsort(descending=True, stable=True)
        keeps.append(_smallest_sufficient(model, x_row, order, notion, min_rate, check_kw))
    return torch.stack(keeps)


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
