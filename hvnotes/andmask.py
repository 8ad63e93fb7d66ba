"""The AND-mask (Parascandolo et al., ICLR 2021): keep only the gradient components on which
every environment agrees.

Averaging per-environment gradients is a logical OR: a component that helps one environment
moves the weights even if no other environment cares. The AND-mask zeroes every component whose
per-environment gradient signs do not agree well enough, so only what is shared gets learned.

Environments are stacked on the first axis everywhere in this module:

* inputs ``xs`` ``(E, B, ...)`` and targets ``ys`` ``(E, B, ...)``: ``B`` examples of each of
  ``E`` environments;
* per-environment gradients ``(E, *param.shape)``.

Losses are ``loss_fn(output, target) -> scalar``, the *mean* over the examples it is given
(``torch.nn.functional.cross_entropy``, ``mse_loss``, ...).

Contents, top to bottom: the mask and its relatives (:func:`and_mask`, :func:`masked_gradient`,
:func:`sand_mask`); per-environment gradients (:func:`env_gradients` with ``torch.func``, and a
faster :func:`pooled_env_gradients` for MLPs); one training step and a loop
(:func:`and_mask_step`, :func:`fit_and_mask`); and :class:`TemporalAndMaskAdam`, which measures
agreement over time when each step sees a single environment.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Mapping

import pandas as pd
import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from hvnotes import seeding
from hvnotes.pooled import pooled_env_gradients, pooled_sign_counts, supports_pooled
from hvnotes.train import (
    accuracy,
    check_optimizer,
    check_positive_int,
    check_stacked,
    check_tensor,
    env_batches,
    run,
)

#: ``loss_fn(output, target) -> scalar``: the mean loss over the examples given.
LossFn = Callable[[Tensor, Tensor], Tensor]

#: ``"random"`` is the AND-mask's null twin: as many components kept per tensor as the AND-mask
#: keeps, at random positions (sign agreement removed, sparsity kept).
METHODS = ("and", "geom", "sand", "random")


# ---------------------------------------------------------------------------------------------
# Argument checks (bad input gets a message that names the argument and what was expected)


def _check_env_grads(env_grads: Tensor) -> None:
    if not isinstance(env_grads, Tensor):
        raise TypeError(
            f"env_grads must be a Tensor of shape (E, ...), got {type(env_grads).__name__}"
        )
    if env_grads.ndim < 1 or env_grads.shape[0] < 1:
        raise ValueError(
            f"env_grads must have shape (E, ...) with E >= 1, got {tuple(env_grads.shape)}"
        )
    if not env_grads.is_floating_point():
        raise TypeError(f"env_grads must be a floating-point Tensor, got {env_grads.dtype}")


def _check_tau(tau) -> float:
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real) or not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be a number in [0, 1], got {tau!r}")
    return float(tau)


def _check_method(method) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def _need_generator(generator) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ValueError(
            'method="random" draws the positions of its mask: pass generator=torch.Generator()'
        )
    return generator


def required_agreement(tau: float, n_envs: int) -> int:
    """Smallest ``|sum_e sign(g_e)|`` that passes ``|mean_e sign(g_e)| >= tau`` with ``n_envs`` envs.

    The mask compares integer sign counts, so ``tau = k / E`` is exact (``0.28 * 25`` is
    ``7.000000000000001`` in floating point; we forgive rounding below 1e-9).
    """
    tau = _check_tau(tau)
    return max(0, math.ceil(tau * n_envs - 1e-9))


def _sign_count(env_grads: Tensor) -> Tensor:
    """``sum_e sign(g_e)`` (exact: integer values in floating point), shape ``...``."""
    return env_grads.sign().sum(dim=0)


def _rescale(update: Tensor, kept_fraction: Tensor) -> Tensor:
    """``update / kept_fraction``, and 0 (never NaN or inf) when nothing is kept."""
    safe = kept_fraction.clamp_min(torch.finfo(update.dtype).tiny)
    return torch.where(kept_fraction > 0, update / safe, torch.zeros_like(update))


# ---------------------------------------------------------------------------------------------
# The mask and its relatives: pure functions of a stack of per-environment gradients (E, ...)


def agreement_mask(sign_count: Tensor, n_envs: int, tau: float) -> Tensor:
    """The AND-mask from sign counts: 1 where ``|sign_count| >= required_agreement(tau, n_envs)``.

    Every AND-masked update of this module (:func:`and_mask`, :func:`masked_gradient`,
    :func:`and_mask_step` on either path) takes its mask from here, so the null twins of
    ``make falsify`` replace the mask in one place.

    Args:
        sign_count: ``sum_e sign(g_e)``, any shape (integer values in floating point).
        n_envs: the number of environments ``E`` that voted.
        tau: agreement threshold in [0, 1].

    Returns:
        float mask of ``sign_count``'s shape and dtype.
    """
    needed = required_agreement(tau, n_envs)
    return (sign_count.abs() >= needed).to(sign_count.dtype)


def random_mask_like(mask: Tensor, generator: torch.Generator) -> Tensor:
    """The AND-mask's null twin: ``mask``'s entries at random positions.

    Keeps exactly as many components as ``mask`` (the same kept fraction, so rescaling and
    sparsity are the same) but chooses them without looking at any gradient: what it removes is
    sign agreement. ``generator`` must live on ``mask``'s device (CPU for a CPU mask).
    """
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    order = torch.randperm(mask.numel(), generator=generator, device=generator.device)
    return mask.flatten()[order.to(mask.device)].view_as(mask)


def random_mask(like: Tensor, fraction: float, generator: torch.Generator) -> Tensor:
    """A mask of ``like``'s shape and dtype keeping ``round(fraction * numel)`` components at random
    positions: the null twin with a *fixed* kept fraction (for instance the AND-mask's average)."""
    fraction = _check_fraction(fraction)
    mask = torch.zeros(like.numel(), dtype=like.dtype, device=like.device)
    mask[: round(fraction * like.numel())] = 1
    return random_mask_like(mask.view_as(like), generator)


def _check_fraction(fraction) -> float:
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, numbers.Real)
        or not 0 <= fraction <= 1
    ):
        raise ValueError(f"a kept fraction must be a number in [0, 1], got {fraction!r}")
    return float(fraction)


def _fraction_for(keep, name: str) -> float | None:
    """``keep`` (None, one fraction, or {parameter name: fraction}) for parameter ``name``."""
    if keep is None or isinstance(keep, numbers.Real):
        return keep
    if not isinstance(keep, Mapping) or name not in keep:
        raise ValueError(f"keep must be a fraction or a mapping with an entry for {name!r}")
    return keep[name]


def _twin_mask(mask: Tensor, generator, fraction: float | None) -> Tensor:
    """The random twin of ``mask``: its count at random positions, or a fixed ``fraction``."""
    generator = _need_generator(generator)
    if fraction is None:
        return random_mask_like(mask, generator)
    return random_mask(mask, fraction, generator)


def and_mask(env_grads: Tensor, tau: float) -> Tensor:
    """Agreement mask of per-environment gradients.

    Args:
        env_grads: ``(E, ...)``, one gradient per environment.
        tau: agreement threshold in [0, 1]; 0 keeps everything, 1 demands unanimous signs.

    Returns:
        float mask of shape ``...``: 1 where ``|mean_e sign(g_e)| >= tau``, else 0. ``sign(0) = 0``
        counts against agreement (an environment with no gradient does not vote for a direction).
        The comparison is done on integer sign counts, so with ``E`` environments the mask only
        changes at ``tau = k / E``: the attainable agreements are ``|E - 2j| / E``, steps of
        ``2 / E``.
    """
    _check_env_grads(env_grads)
    return agreement_mask(_sign_count(env_grads), env_grads.shape[0], tau)


def _combine(
    env_grads: Tensor,
    tau: float,
    method: str,
    k: float,
    mean: Tensor | None = None,
    generator: torch.Generator | None = None,
    keep: float | None = None,
) -> tuple[Tensor, Tensor]:
    """(mask, combined update) before any rescaling; ``mean`` may be given if known exactly."""
    mean = env_grads.mean(dim=0) if mean is None else mean
    if method == "sand":
        mask = sand_mask(env_grads, tau, k)
        return mask, mask * mean
    mask = and_mask(env_grads, tau)
    if method == "random":
        mask = _twin_mask(mask, generator, keep)
    if method in ("and", "random"):
        return mask, mask * mean
    # geometric mean of magnitudes, computed in log space; sign of the arithmetic mean
    magnitude = torch.exp(torch.log(env_grads.abs() + 1e-10).mean(dim=0))
    return mask, mask * torch.sign(mean) * magnitude


def masked_gradient(
    env_grads: Tensor,
    tau: float,
    method: str = "and",
    rescale: bool = False,
    *,
    k: float = 10.0,
    generator: torch.Generator | None = None,
    keep: float | None = None,
) -> Tensor:
    """Combine per-environment gradients into one update direction.

    Args:
        env_grads: ``(E, ...)``.
        tau: agreement threshold in [0, 1] (see :func:`and_mask`).
        method: ``"and"``: ``mask * mean_e g_e``; ``"geom"``: ``mask * sign(mean_e g_e) *
            exp(mean_e log(|g_e| + 1e-10))`` (the geometric mean of the magnitudes);
            ``"sand"``: ``sand_mask(env_grads, tau, k) * mean_e g_e`` (a soft mask);
            ``"random"``: the null twin, ``random_mask_like(and_mask(env_grads, tau)) *
            mean_e g_e`` (as many components as the AND-mask keeps, at random positions).
        rescale: multiply by ``1 / kept_fraction`` (the mean of the mask over this tensor), so a
            sparse update keeps its size; 0 when nothing is kept, never NaN.
        k: steepness of the SAND-mask (only used by ``method="sand"``).
        generator: draws the random mask's positions (needed by ``method="random"`` only).
        keep: ``method="random"`` only: a fixed kept fraction instead of the AND-mask's count.

    Returns:
        the combined gradient, shape ``...``. ``tau = 0, method="and"`` is the plain mean exactly.
    """
    _check_env_grads(env_grads)
    _check_tau(tau)
    _check_method(method)
    mask, update = _combine(env_grads, tau, method, k, generator=generator, keep=keep)
    return _rescale(update, mask.mean()) if rescale else update


def sand_mask(env_grads: Tensor, tau: float, k: float) -> Tensor:
    """The smoothed AND-mask (SAND-mask, Shahtalebi et al. 2021, as in DomainBed).

    ``max(0, tanh(k * (|mean_e sign(g_e)| - tau) / var_e(g_e)))``: a soft mask in [0, 1) that is
    large where signs agree *and* the environments' gradients have similar sizes (small
    unbiased variance over environments). A zero or undefined variance (one environment) is
    replaced by 1e-17, so the mask there is a hard step; ``tau >= 1`` gives an all-zero mask.

    Args:
        env_grads: ``(E, ...)``.
        tau: agreement threshold in [0, 1].
        k: positive steepness; large ``k`` approaches the hard AND-mask.

    Returns:
        float mask of shape ``...``.
    """
    _check_env_grads(env_grads)
    tau = _check_tau(tau)
    if isinstance(k, bool) or not isinstance(k, numbers.Real) or not k > 0 or math.isinf(k):
        raise ValueError(f"k must be a positive finite number, got {k!r}")
    if tau >= 1:
        warnings.warn(
            "sand_mask with tau >= 1 is zero everywhere (|mean sign| - tau <= 0): nothing "
            "will be learned; use tau < 1",
            stacklevel=2,
        )
    if not torch.isfinite(env_grads).all():
        raise ValueError("env_grads holds NaN or inf values: the mask would be meaningless")
    n_envs = env_grads.shape[0]
    agreement = _sign_count(env_grads).abs() / n_envs
    if n_envs > 1:
        var = env_grads.var(dim=0, unbiased=True)
    else:
        var = torch.zeros_like(env_grads[0])
    var = torch.nan_to_num(var, nan=1e-17).clamp_min(1e-17)
    mask = torch.tanh(k * (agreement - tau) / var).clamp_min(0.0)
    return torch.nan_to_num(mask, nan=0.0)


# ---------------------------------------------------------------------------------------------
# Per-environment gradients


def _trainable(model: nn.Module) -> dict[str, Tensor]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def env_gradients(model: nn.Module, loss_fn: LossFn, xs: Tensor, ys: Tensor) -> dict[str, Tensor]:
    """Gradient of each environment's mean loss, for every trainable parameter.

    Vectorised with ``torch.func`` (``vmap(grad(...))`` over the environment axis): one call, no
    Python loop over environments. Works for any model without batch-coupling layers
    (BatchNorm in training mode would need ``torch.func.replace_all_batch_norm_modules_``).

    Args:
        model: maps ``(B, ...)`` to outputs ``(B, ...)``.
        loss_fn: ``loss_fn(output, target) -> scalar`` mean loss.
        xs: inputs ``(E, B, ...)``; ``ys``: targets ``(E, B, ...)``.

    Returns:
        ``{name: (E, *param.shape)}`` for every parameter with ``requires_grad``.
    """
    return _env_gradients_and_losses(model, loss_fn, xs, ys)[0]


def _env_gradients_and_losses(
    model: nn.Module, loss_fn: LossFn, xs: Tensor, ys: Tensor
) -> tuple[dict[str, Tensor], Tensor]:
    """:func:`env_gradients` plus each environment's loss ``(E,)`` (from the same forward)."""
    check_stacked(xs, ys)
    params = {name: p.detach() for name, p in _trainable(model).items()}
    frozen = {name: p.detach() for name, p in model.named_parameters() if not p.requires_grad}
    buffers = dict(model.named_buffers())

    def env_loss(p: dict[str, Tensor], x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        loss = loss_fn(functional_call(model, (p, frozen, buffers), (x,)), y)
        return loss, loss.detach()

    return vmap(grad(env_loss, has_aux=True), in_dims=(None, 0, 0))(params, xs, ys)


# ---------------------------------------------------------------------------------------------
# Training with the mask


def and_mask_step(
    model: nn.Module,
    loss_fn: LossFn,
    xs: Tensor,
    ys: Tensor,
    optimizer: torch.optim.Optimizer,
    tau: float,
    method: str = "and",
    rescale: bool = False,
    *,
    k: float = 10.0,
    generator: torch.Generator | None = None,
    keep: float | Mapping[str, float] | None = None,
) -> tuple[float, dict[str, float]]:
    """One AND-masked training step on an env-stacked batch.

    Per-environment gradients are combined by :func:`masked_gradient` per parameter tensor,
    written to ``.grad``, and ``optimizer.step()`` is called. Weight decay stays the
    optimizer's, so it acts *after* the mask: masked weights still decay, which is what removes
    features that only some environments use.

    For MLPs (:func:`supports_pooled`) everything comes from one pooled forward/backward: the
    mean is the pooled gradient itself and, for ``method="and"``, only the per-component sign
    counts are formed, block by block. Other models use :func:`env_gradients` (``torch.func``).

    Args:
        model, loss_fn, xs, ys: as in :func:`env_gradients` (``xs`` ``(E, B, ...)``).
        optimizer: any ``torch.optim.Optimizer`` over ``model``'s parameters.
        tau: agreement threshold in [0, 1]; ``tau = 0`` with ``method="and"`` is the ERM step on
            the pooled batch (bit for bit; no per-environment gradients are formed).
        method: ``"and"``, ``"geom"``, ``"sand"`` or the null twin ``"random"`` (see
            :func:`masked_gradient`).
        rescale: per tensor, divide the update by its kept fraction (0 if nothing is kept).
        k: SAND-mask steepness.
        generator: draws the random mask's positions (``method="random"`` only).
        keep: ``method="random"`` only: a fixed kept fraction per tensor (one number, or
            ``{parameter name: fraction}``) instead of the AND-mask's count at this step.

    Returns:
        ``(mean loss over the batch, {parameter name: kept fraction})``; for SAND the kept
        fraction is the mean of the soft mask.
    """
    _check_tau(tau)
    _check_method(method)
    n_envs = check_stacked(xs, ys)[0]
    check_tensor("xs", xs)
    check_tensor("ys", ys)
    check_optimizer(optimizer, model)
    params = _trainable(model)
    if method == "random":
        _need_generator(generator)
    masks, updates = {}, {}
    if method == "and" and required_agreement(tau, n_envs) == 0:
        # nothing can be masked: the ERM step itself, without forming per-environment gradients
        return _pooled_step(model, loss_fn, xs, ys, optimizer, params)
    with torch.no_grad():
        if supports_pooled(model) and method in ("and", "random"):
            loss, counts = pooled_sign_counts(model, loss_fn, xs, ys)
            for name, count in counts.items():
                masks[name] = agreement_mask(count, n_envs, tau)
                if method == "random":
                    masks[name] = _twin_mask(masks[name], generator, _fraction_for(keep, name))
                updates[name] = masks[name] * params[name].grad
        else:
            if supports_pooled(model):
                loss, grads = pooled_env_gradients(model, loss_fn, xs, ys)
                means = {name: params[name].grad for name in grads}
            else:
                with torch.enable_grad():
                    grads, env_losses = _env_gradients_and_losses(model, loss_fn, xs, ys)
                loss = env_losses.mean()
                means = {name: g.mean(dim=0) for name, g in grads.items()}
            for name, env_grads in grads.items():
                masks[name], updates[name] = _combine(
                    env_grads, tau, method, k, mean=means[name], generator=generator,
                    keep=_fraction_for(keep, name) if method == "random" else None,
                )  # fmt: skip
        kept = {}
        for name, update in updates.items():
            fraction = masks[name].mean()
            params[name].grad = _rescale(update, fraction) if rescale else update
            kept[name] = fraction.item()
    if not torch.isfinite(loss):
        raise ValueError(
            f"the loss is {loss.item()}: the model's weights or outputs are not finite"
        )
    optimizer.step()
    return loss.item(), kept


def _pooled_step(
    model: nn.Module,
    loss_fn: LossFn,
    xs: Tensor,
    ys: Tensor,
    optimizer: torch.optim.Optimizer,
    params: dict[str, Tensor],
) -> tuple[float, dict[str, float]]:
    """The plain ERM step on the pooled batch ``(E * B, ...)``: what ``tau = 0`` amounts to."""
    for p in model.parameters():
        p.grad = None
    with torch.enable_grad():
        loss = loss_fn(model(xs.flatten(0, 1)), ys.flatten(0, 1))
        loss.backward()
    if not torch.isfinite(loss):
        raise ValueError(
            f"the loss is {loss.item()}: the model's weights or outputs are not finite"
        )
    optimizer.step()
    return loss.item(), dict.fromkeys(params, 1.0)


def fit_and_mask(
    model: nn.Module,
    loss_fn: LossFn,
    x_envs: Tensor,
    y_envs: Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    steps: int,
    tau: float,
    method: str = "and",
    rescale: bool = False,
    k: float = 10.0,
    keep: float | Mapping[str, float] | None = None,
    batch_per_env: int = 32,
    envs_per_step: int | None = None,
    eval_sets: Mapping[str, tuple[Tensor, Tensor]] | None = None,
    eval_every: int = 100,
    seed: int | None = None,
) -> pd.DataFrame:
    """Train with :func:`and_mask_step` for ``steps`` steps and return the history.

    Each step draws ``envs_per_step`` environments (all when None) without replacement and
    ``batch_per_env`` examples from each, so the step sees an env-stacked batch
    ``(envs_per_step, batch_per_env, ...)``. With ``tau=0`` this is plain ERM on the same
    batches, the baseline to compare against.

    Args:
        x_envs: ``(E, N, ...)``, ``N`` examples for each of ``E`` environments; ``y_envs``
            ``(E, N, ...)``.
        optimizer: any optimizer (its weight decay acts after the mask).
        eval_sets: name -> ``(x, y)`` with plain batches ``(M, ...)``; accuracy (argmax of the
            output) is logged as ``acc_<name>`` every ``eval_every`` steps and at the end.
        seed: seeds the sampling of environments and examples, and the random mask's positions
            for ``method="random"`` (None: the run's ``hvnotes.derive_seed(0)``).
        keep: ``method="random"`` only: fixed kept fractions (see :func:`and_mask_step`).

    Speed: weight decay drives masked weights towards zero, into the denormal range, where CPU
    arithmetic is several times slower; ``hvnotes.setup`` flushes denormals to zero for the
    whole notebook (this function changes no global state).

    Returns:
        DataFrame with one row per evaluation (:func:`hvnotes.train.run`): ``step``, ``loss``
        (mean since the last row), ``kept`` (mean kept fraction over parameters),
        ``kept_<param>`` per parameter, ``seconds`` and ``acc_<name>``.
    """
    check_stacked(x_envs, y_envs)
    check_optimizer(optimizer, model)
    eval_sets = dict(eval_sets or {})
    # the random mask's own stream (method="random"), on the device of the data
    mask_generator = seeding.generator(seed, device=x_envs.device)

    def step(xs: Tensor, ys: Tensor) -> dict[str, float]:
        model.train()
        loss, kept = and_mask_step(
            model, loss_fn, xs, ys, optimizer, tau, method=method, rescale=rescale, k=k,
            generator=mask_generator, keep=keep,
        )  # fmt: skip
        return {"loss": loss} | {f"kept_{name}": value for name, value in kept.items()}

    def evaluate() -> dict[str, float]:
        return {f"acc_{name}": accuracy(model, *xy) for name, xy in eval_sets.items()}

    batches = env_batches(
        x_envs, y_envs, batch_per_env=batch_per_env, envs_per_step=envs_per_step, seed=seed
    )
    history = run(
        step, batches, steps=steps, log_every=check_positive_int("eval_every", eval_every),
        evaluate=evaluate, progress=False,
    )  # fmt: skip
    kept = [c for c in history.columns if c.startswith("kept_")]
    history.insert(2, "kept", history[kept].mean(axis=1))
    return history


def fit_spirals(
    data,
    tau: float,
    *,
    method: str = "and",
    seed: int | None = None,
    steps: int = 400,
    batch_per_env: int = 128,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    hidden: tuple[int, ...] = (64, 64),
    rescale: bool = True,
    k: float = 10.0,
    keep: float | Mapping[str, float] | None = None,
    eval_every: int = 50,
) -> tuple[nn.Sequential, pd.DataFrame]:
    """Notebook 02's recipe for the spirals benchmark: a ReLU MLP trained by :func:`fit_and_mask`.

    Adam (``lr``; ``weight_decay`` is its L2 term, added to the masked gradient inside the step,
    so it acts *after* the mask), per-tensor rescaling by the inverse kept fraction, every
    environment in every step with ``batch_per_env`` examples each. ``tau = 0`` is ERM on the
    same batches; ``method="random"`` the AND-mask's null twin (with ``keep``: at fixed kept
    fractions, e.g. an AND-mask run's averages ``{name: fraction}``).

    Args:
        data: a :class:`hvnotes.datasets.SpiralEnvs` (``x_train`` ``(E, N, F)``).
        seed: the initialisation, the batches and the random mask's positions (None: the run's
            ``hvnotes.derive_seed(0)``).

    Returns:
        ``(model, history)``; the history (:func:`fit_and_mask`) logs ``acc_train`` (the pooled
        training set) and ``acc_test`` (the shifted test set) every ``eval_every`` steps.
    """
    from hvnotes import models

    seed = seeding.resolve_seed(seed)
    with seeding.torch_seed(seed):
        model = models.mlp(data.x_train.shape[-1], hidden, 2).to(data.x_train.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = fit_and_mask(
        model,
        nn.functional.cross_entropy,
        data.x_train,
        data.y_train,
        optimizer,
        steps=steps,
        tau=tau,
        method=method,
        rescale=rescale,
        k=k,
        keep=keep,
        batch_per_env=batch_per_env,
        eval_sets={
            "train": (data.x_train.flatten(0, 1), data.y_train.flatten()),
            "test": (data.x_test, data.y_test),
        },
        eval_every=eval_every,
        seed=seed,
    )
    return model, history


def kept_fractions(history: pd.DataFrame) -> dict[str, float]:
    """Each parameter's kept fraction averaged over a :func:`fit_and_mask` history: ``{name:
    fraction}``, the ``keep`` that gives a random-mask twin the same sparsity on average."""
    columns = [c for c in history.columns if c.startswith("kept_")]
    if not columns:
        raise ValueError("history has no kept_<parameter> columns (not from fit_and_mask?)")
    return {c.removeprefix("kept_"): float(history[c].mean()) for c in columns}


# ---------------------------------------------------------------------------------------------
# Temporal AND-mask Adam: agreement over time, one environment per step (paper Algorithm 1)


class TemporalAndMaskAdam(torch.optim.Optimizer):
    """Adam whose first moment is masked by how consistently each gradient sign held over time.

    Per step, with the gradient ``g`` of the current (single-environment) batch::

        m <- b1 m + (1 - b1) g            v <- b2 v + (1 - b2) g*g
        a <- b3 a + (1 - b3) sign(g)      mask = 1[|a| >= tau]
        theta <- theta - lr * (mask * m_hat) / (sqrt(v_hat) + eps)
        theta <- theta - lr * weight_decay * theta        (decoupled, after the masked step)

    ``m_hat, v_hat`` are Adam's bias-corrected moments (as in ``torch.optim.Adam``, so
    ``tau = 0, weight_decay = 0`` is plain Adam); ``a`` has no bias correction (paper Alg. 1),
    so with ``beta3 = 0.9`` a sign must hold for a few steps before ``|a|`` can reach ``tau``.
    Masking ``m`` (not ``g``) matters: masking ``g`` inside Adam would still move masked
    weights through stale momentum.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        beta3: float = 0.9,
        tau: float = 0.5,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        if not 0.0 < lr:
            raise ValueError(f"lr must be positive, got {lr!r}")
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        if not 0.0 <= beta3 < 1.0:
            raise ValueError(f"beta3 must be in [0, 1), got {beta3!r}")
        _check_tau(tau)
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        defaults = dict(
            lr=lr, betas=tuple(betas), beta3=beta3, tau=tau, eps=eps, weight_decay=weight_decay
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            beta3, tau, lr, eps = group["beta3"], group["tau"], group["lr"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    state["sign_avg"] = torch.zeros_like(p)
                state["step"] += 1
                m, v, a = state["exp_avg"], state["exp_avg_sq"], state["sign_avg"]
                m.lerp_(g, 1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                a.mul_(beta3).add_(g.sign(), alpha=1 - beta3)
                t = state["step"]
                step_size = lr / (1 - beta1**t)
                denom = (v.sqrt() / math.sqrt(1 - beta2**t)).add_(eps)
                mask = (a.abs() >= tau).to(p.dtype)
                state["kept"] = mask.mean().item()
                p.addcdiv_(m * mask, denom, value=-step_size)
                if group["weight_decay"] != 0:
                    p.mul_(1 - lr * group["weight_decay"])
        return loss


# ---------------------------------------------------------------------------------------------
# Random gradients (paper Prop. 2): how fast does the masked update vanish with more envs?


def keep_probability(n_envs: int, tau: float) -> float:
    """Probability that a component passes the AND-mask when each of ``n_envs`` signs is a fair
    coin: ``2 * 2^-E * sum_{j >= t} C(E, j)`` over agreeing counts with ``|2j - E| >= tau E``."""
    if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
        raise ValueError(f"n_envs must be a positive int, got {n_envs!r}")
    needed = required_agreement(tau, n_envs)
    return sum(math.comb(n_envs, j) for j in range(n_envs + 1) if abs(2 * j - n_envs) >= needed) / (
        2**n_envs
    )


def pass_probability(n_envs: int, tau: float, p_agree: float) -> float:
    """Probability that a component passes the AND-mask when each environment's gradient sign
    is, independently, the component's true sign with probability ``p_agree`` (never zero):
    ``sum_j C(E, j) p^j (1 - p)^(E - j)`` over ``j`` right signs with ``|2j - E| >= tau E``.

    ``p_agree = 0.5`` is :func:`keep_probability` (a shortcut weight with no common sign); a
    weight the mechanism moves, with per-example signal-to-noise ``s``, has about
    ``p_agree = Phi(sqrt(B) * s)`` for a batch of ``B`` examples per environment.
    """
    if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
        raise ValueError(f"n_envs must be a positive int, got {n_envs!r}")
    if not isinstance(p_agree, int | float) or not 0 <= p_agree <= 1:
        raise ValueError(f"p_agree must be a probability in [0, 1], got {p_agree!r}")
    needed = required_agreement(tau, n_envs)
    return sum(
        math.comb(n_envs, j) * p_agree**j * (1 - p_agree) ** (n_envs - j)
        for j in range(n_envs + 1)
        if abs(2 * j - n_envs) >= needed
    )


def random_gradient_norms(
    env_counts, tau: float, dim: int = 3000, trials: int = 5, seed: int | None = None
) -> pd.DataFrame:
    """Squared norms of the averaged vs AND-masked update of i.i.d. ``N(0, I_dim)`` env gradients.

    Returns a DataFrame with columns ``envs``, ``mean_sq_norm`` (``E ||mean_e g_e||^2``,
    theory ``dim / envs``) and ``masked_sq_norm`` (``E ||mask * mean_e g_e||^2``), averaged over
    ``trials`` draws.
    """
    generator = seeding.generator(seed)
    rows = []
    for n_envs in env_counts:
        g = torch.randn(trials, n_envs, dim, generator=generator, dtype=torch.float64)
        mean = g.mean(dim=1)
        masked = torch.stack([masked_gradient(g[i], tau) for i in range(trials)])
        rows.append(
            {
                "envs": int(n_envs),
                "mean_sq_norm": mean.pow(2).sum(dim=1).mean().item(),
                "masked_sq_norm": masked.pow(2).sum(dim=1).mean().item(),
            }
        )
    return pd.DataFrame(rows)
