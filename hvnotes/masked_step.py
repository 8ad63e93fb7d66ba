"""One AND-masked training step (Parascandolo et al., ICLR 2021): per-environment gradients of an
environment-stacked batch ``(E, B, ...)``, combined by a mask of agreement, written to ``.grad``,
and the optimizer's step. :class:`hvnotes.algorithms.ANDMask` and its relatives are this step;
:mod:`hvnotes.andmask` re-exports it beside the loop that trains with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from hvnotes import validation
from hvnotes.agreement import (
    _check_flag,
    _check_method,
    _check_tau,
    _combine,
    _fraction_for,
    _need_generator,
    _rescale,
    _twin_mask,
    agreement_mask,
    required_agreement,
)
from hvnotes.env_gradients import _env_gradients_and_losses, _trainable
from hvnotes.pooled import pooled_env_gradients, pooled_sign_counts, supports_pooled
from hvnotes.validation import check_input_dtype, check_optimizer, check_stacked, check_tensor

__all__ = ["LossFn", "and_mask_step"]

#: ``loss_fn(output, target) -> scalar``: the mean loss over the examples given.
LossFn = Callable[[Tensor, Tensor], Tensor]


# ---------------------------------------------------------------------------------------------
# Argument checks (bad input gets a message that names the argument and what was expected)


def _is_cross_entropy(loss_fn) -> bool:
    return loss_fn is nn.functional.cross_entropy or isinstance(loss_fn, nn.CrossEntropyLoss)


def _check_class_labels(model: nn.Module, loss_fn, ys: Tensor) -> None:
    """With a cross-entropy loss, ``ys`` ``(E, B)`` must hold class indices in ``[0, C)``
    (``C`` read from the last ``nn.Linear`` of an MLP; other models: only ``>= 0``)."""
    if not _is_cross_entropy(loss_fn):
        return
    classes = None
    if supports_pooled(model):
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        classes = linears[-1].out_features if linears else None
    if ys.ndim != 2:
        raise ValueError(
            f"ys must hold class indices stacked (E, B) for a cross-entropy loss, got shape "
            f"{tuple(ys.shape)}"
        )
    validation.check_labels("ys", ys.flatten(), classes=classes)


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
    _check_flag("rescale", rescale)
    n_envs = check_stacked(xs, ys)[0]
    check_tensor("xs", xs)
    check_tensor("ys", ys)
    check_input_dtype(model, xs, "xs")
    _check_class_labels(model, loss_fn, ys)
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
