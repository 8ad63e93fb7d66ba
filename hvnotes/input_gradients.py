"""Input gradients and where they lie (Ross, Hughes & Doshi-Velez, IJCAI 2017): the quantity RRR
penalises, the mask of its largest entries (find-another-explanation's annotations), and the share
of its mass inside a region.

Shapes: inputs ``x`` ``(B, ...)``, logits ``(B, K)``; gradients have ``x``'s shape; an annotation
or region mask is bool, ``x``'s shape or one example's (``x[0]``). Re-exported by :mod:`hvnotes.rrr`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hvnotes import validation

_QUANTITIES = ("sum_log_probs", "sum_probs", "max_prob", "max_log_prob")


def input_gradients(
    model: nn.Module, x: Tensor, create_graph: bool = False, quantity: str = "sum_log_probs"
) -> Tensor:
    """Gradient of a per-example scalar of the model's output with respect to its input.

    Args:
        model: maps ``x`` ``(B, ...)`` to logits ``(B, K)``. Examples must not interact (no
            BatchNorm in training mode), so the gradient of the batch sum is per example.
        x: inputs ``(B, ...)``, floating point.
        create_graph: keep the graph so that a loss built from the result can be
            differentiated with respect to the parameters (double backprop). Otherwise the
            result is detached.
        quantity: what is differentiated, per example:
            ``"sum_log_probs"`` (RRR's choice, :math:`\\sum_k \\log \\hat p_k`),
            ``"sum_probs"`` (:math:`\\sum_k \\hat p_k = 1`, so its gradient is identically 0),
            ``"max_prob"`` (the predicted class's probability, used by the paper's pictures),
            ``"max_log_prob"`` (its log): the four loss variants the paper's code compares.

    Returns:
        the input gradient, same shape and dtype as ``x``.
    """
    _check_inputs(model, x)
    _check_quantity(quantity)
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = validation.check_logits("model", model(x), n=len(x))
        log_probs = torch.log_softmax(logits, dim=1)
        scalar = _per_example(log_probs, quantity).sum()
        (grads,) = torch.autograd.grad(scalar, x, create_graph=create_graph)
    return grads if create_graph else grads.detach()


def _check_inputs(model, x) -> None:
    """``model`` a callable whose rows do not interact; ``x`` a finite float batch ``(B, ...)``."""
    validation.check_model("model", model)
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError("x must be a floating-point Tensor of shape (B, ...)")
    if x.ndim < 2:
        raise ValueError(f"x must have shape (B, ...) with a batch axis, got {tuple(x.shape)}")
    validation.check_tensor("x", x)
    validation.check_per_example("model", model)
    validation.check_input_dtype(model, x)


def _check_cutoff(cutoff) -> float:
    try:
        return validation.check_number("cutoff", cutoff, low=0.0, high=1.0, high_open=True)
    except TypeError as err:
        raise ValueError(f"{err} (a number in [0, 1))") from None


def _check_quantity(quantity) -> None:
    if quantity not in _QUANTITIES:
        raise ValueError(f"quantity must be one of {_QUANTITIES}, got {quantity!r}")


def _per_example(log_probs: Tensor, quantity: str) -> Tensor:
    if quantity == "sum_log_probs":
        return log_probs.sum(dim=1)
    if quantity == "sum_probs":
        return log_probs.exp().sum(dim=1)
    if quantity == "max_log_prob":
        return log_probs.max(dim=1).values
    return log_probs.exp().max(dim=1).values


def _check_annotations(annotations, x: Tensor) -> Tensor:
    """``annotations`` as a bool tensor on ``x``'s device that broadcasts to ``x`` without growing it."""
    validation.check_mask(
        "annotations (bool: True = must not matter)", annotations, x,
        "give (B, ...) like x, or one mask shaped like x[0]", broadcast="rows",
    )  # fmt: skip
    if annotations.dtype != torch.bool:
        if not ((annotations == 0) | (annotations == 1)).all():
            raise ValueError("annotations must be boolean (or 0/1): True = must not matter")
    return annotations.to(device=x.device, dtype=torch.bool)


def largest_gradient_mask(grads: Tensor, cutoff: float = 0.67, channel_dim: int | None = None):
    """Where each example's gradient is largest: ``|g| > cutoff · max |g|`` per example.

    Args:
        grads: ``(N, ...)`` input gradients.
        cutoff: in [0, 1); the paper's 0.67 keeps the top few per cent of entries.
        channel_dim: if given (e.g. ``-1`` for ``(N, H, W, 3)`` images), a pixel is marked in
            every channel when any of its channels passes, as the paper does for colour images.

    Returns:
        BoolTensor of the shape of ``grads``. An all-zero gradient marks nothing.
    """
    if not isinstance(grads, Tensor) or grads.ndim < 2:
        raise ValueError("grads must be a Tensor of shape (N, ...)")
    validation.check_tensor("grads", grads)
    cutoff = _check_cutoff(cutoff)
    mag = grads.detach().abs()
    peak = mag.flatten(1).max(dim=1).values.view(-1, *([1] * (grads.ndim - 1)))
    mask = mag > cutoff * peak
    if channel_dim is not None:
        mask = mask.any(dim=channel_dim, keepdim=True).expand_as(mask)
    return mask


def gradient_mass(grads: Tensor, region: Tensor) -> Tensor:
    """Fraction of each example's ``|g|`` that falls inside ``region``.

    Args:
        grads: ``(N, ...)``; region: bool, broadcastable to ``grads``.

    Returns:
        ``(N,)`` in [0, 1] (0 for an all-zero gradient).
    """
    if not isinstance(grads, Tensor) or grads.ndim < 2:
        raise ValueError("grads must be a Tensor of shape (N, ...)")
    validation.check_tensor("grads", grads)
    region = _check_annotations(region, grads)
    mag = grads.detach().abs().flatten(1)
    inside = torch.where(region.expand_as(grads).flatten(1), mag, 0.0).sum(dim=1)
    return inside / mag.sum(dim=1).clamp_min(torch.finfo(mag.dtype).tiny)


def _per_row_annotations(annotations: Tensor, x: Tensor) -> bool:
    """True when ``annotations`` holds one mask per training row (indexed with the batch)."""
    _check_annotations(annotations, x)
    return annotations.ndim == x.ndim and annotations.shape[0] == len(x) and len(x) > 1


def _batched_input_gradients(model: nn.Module, x: Tensor, batch_size: int = 2048) -> Tensor:
    return torch.cat(
        [input_gradients(model, x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    )
