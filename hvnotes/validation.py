"""The one place that checks input: tensors, labels, masks, numbers, models and optimizers.

Every public function of the package checks its arguments here *before* it computes or trains
anything, and a bad argument gets a ``TypeError`` (wrong kind of thing) or a ``ValueError``
(right kind, wrong shape, value or range) whose message names the argument and says what was
expected. NaN and inf are errors wherever a number or a tensor of numbers is expected; no shape is
ever broadcast silently (the broadcasts a mask may use are listed in :func:`check_mask`).

It sits at the bottom of the package: it and its two parts import only torch, NumPy, the
standard library and each other, so every module can use it (the sufficiency checker included,
without importing training code). This module holds the checks of tensor arguments; the checks
of numbers and of models live in their own modules, and every name is re-exported here
(``validation.check_number`` keeps working):

* numbers (:mod:`hvnotes.validation_numbers`): :func:`check_number` (finite, in a range; NumPy
  scalars and 0-d tensors welcome), :func:`check_integer`, :func:`check_positive_int`,
  :func:`check_choice`, :func:`check_callable`, :func:`check_generator`;
* tensors (here): :func:`check_tensor` (kind, dimensions, shape, dtype, device, finite, rows),
  :func:`check_labels` (1-D integer class indices in range), :func:`check_mask` (the exact shape
  or a documented broadcast), :func:`check_stacked` (environment-stacked ``(E, B, ...)``);
* models (:mod:`hvnotes.validation_models`): :func:`check_model` (the callable contract),
  :func:`check_logits` (its output), :func:`check_per_example` (no BatchNorm coupling rows),
  :func:`check_input_dtype`, :func:`check_finite_parameters`, :func:`check_optimizer`, and
  :func:`preserved_mode` / :func:`evaluating`, which restore a model's train/eval mode also when
  the block raises.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from hvnotes.validation_models import (
    check_finite_parameters,
    check_input_dtype,
    check_logits,
    check_model,
    check_optimizer,
    check_per_example,
    evaluating,
    preserved_mode,
)
from hvnotes.validation_numbers import (  # noqa: F401  (_as_scalar, _interval: their old home)
    _as_scalar,
    _interval,
    _kind,
    _shape,
    check_callable,
    check_choice,
    check_generator,
    check_integer,
    check_number,
    check_positive_int,
)

__all__ = [
    "check_callable", "check_choice", "check_finite_parameters", "check_generator",
    "check_input_dtype", "check_integer", "check_labels", "check_logits", "check_mask",
    "check_model", "check_number", "check_optimizer", "check_per_example", "check_positive_int",
    "check_stacked", "check_tensor", "evaluating", "preserved_mode",
]  # fmt: skip

_DTYPE_KINDS = ("float", "integer", "bool")


# ----------------------------------------------------------------------------- tensors


def check_tensor(
    name: str, value, *, ndim: int | None = None, min_ndim: int | None = None,
    shape: Sequence[int | None] | None = None, dtype: str | torch.dtype | None = None,
    device: torch.device | str | Tensor | None = None, finite: bool = True, rows: bool = True,
) -> Tensor:  # fmt: skip
    """``value`` as a Tensor that meets every condition given, else a clear error.

    Args:
        ndim / min_ndim: exact / least number of dimensions.
        shape: the exact shape; ``None`` entries match any size (``(None, 4)``).
        dtype: a ``torch.dtype``, or a kind: ``"float"``, ``"integer"`` or ``"bool"``.
        device: the device it must be on (a device, its name, or a tensor to match).
        finite: refuse NaN and inf (floating-point tensors).
        rows: a batch: at least one dimension and at least one row (``len(value) >= 1``).
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if rows and (value.ndim == 0 or len(value) == 0):
        raise ValueError(f"{name} must hold at least one row, got shape {_shape(value)}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {_shape(value)}")
    if min_ndim is not None and value.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension(s), got shape {_shape(value)}"
        )
    if shape is not None and (
        len(shape) != value.ndim
        or any(s not in (None, v) for s, v in zip(shape, value.shape, strict=True))
    ):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {_shape(value)}")
    if dtype is not None:
        if isinstance(dtype, str):
            if dtype not in _DTYPE_KINDS:
                raise ValueError(f"dtype must be a torch.dtype or one of {_DTYPE_KINDS}")
            if _kind(value.dtype) != dtype:
                article = "an" if dtype == "integer" else "a"
                raise TypeError(f"{name} must be {article} {dtype} tensor, got {value.dtype}")
        elif value.dtype != dtype:
            raise TypeError(f"{name} must have dtype {dtype}, got {value.dtype}")
    if device is not None:
        want = device.device if isinstance(device, Tensor) else torch.device(device)
        if value.device.type != want.type or (
            want.index is not None and value.device.index != want.index
        ):
            raise ValueError(f"{name} is on {value.device} but must be on {want}: move it")
    if finite and (value.is_floating_point() or value.is_complex()):
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} holds NaN or inf values")
    return value


def check_labels(
    name: str, value, *, n: int | None = None, classes: int | None = None, long: bool = False
) -> Tensor:
    """``value`` as class labels: a 1-D integer Tensor ``(N,)`` with entries in ``[0, classes)``.

    Args:
        n: the number of rows it must have (``len(x)``).
        classes: the number of classes (the model's output width), when known.
        long: demand ``torch.int64``, the dtype ``cross_entropy`` takes.
    """
    check_tensor(name, value)
    if value.ndim != 1:
        hint = (
            " (drop the extra axis: y.squeeze(1))"
            if value.ndim == 2 and value.shape[1] == 1
            else ""
        )
        raise ValueError(
            f"{name} must have 1 dimension, class indices of shape (N,); got shape "
            f"{_shape(value)}{hint}"
        )
    if _kind(value.dtype) != "integer":
        raise TypeError(
            f"{name} must hold integer class indices (torch.int64), got {value.dtype}: "
            f"convert with {name}.long() if the values are whole numbers"
        )
    if long and value.dtype != torch.int64:
        raise TypeError(f"{name} must be torch.int64 (long), got {value.dtype}: use {name}.long()")
    if n is not None and len(value) != n:
        raise ValueError(f"{name} must have {n} rows (one per input), got {len(value)}")
    low, high = int(value.min()), int(value.max())
    if low < 0 or (classes is not None and high >= classes):
        span = f"[0, {classes})" if classes is not None else ">= 0"
        raise ValueError(
            f"{name} must hold class indices {span}, got values from {low} to {high}"
            + (f" (the model has {classes} outputs)" if classes is not None else "")
        )
    return value


#: the shapes a mask may take against inputs ``x`` of shape ``(N, *shape)``
MASK_BROADCASTS = ("none", "rows", "any")


def check_mask(
    name: str, mask, x: Tensor, hint: str = "", *, broadcast: str = "rows", dtype: str | None = None
) -> Tensor:
    """``mask`` checked against inputs ``x`` ``(N, *shape)``; returned unchanged.

    Args:
        broadcast: which shapes are accepted, never anything else:
            ``"none"``: exactly ``x.shape``;
            ``"rows"``: ``x.shape``, or ``x.shape[1:]`` (one mask shared by every row);
            ``"any"``: any shape that broadcasts to ``x`` without changing its shape (``(N, 1)``
            against ``(N, D)`` marks whole rows: a broadcast that is easy to make by mistake;
            only for callers that document it).
        dtype: the kind the mask must have (``"bool"``), if any.
        hint: what to pass instead, appended to the error.
    """
    check_choice("broadcast", broadcast, MASK_BROADCASTS)
    full, row = tuple(x.shape), tuple(x.shape[1:])
    if not isinstance(mask, Tensor):
        want = f"broadcastable to x {full}" if broadcast == "any" else f"of shape {full}"
        raise TypeError(f"{name} must be a Tensor {want}, got {type(mask).__name__}")
    if broadcast == "any":
        try:
            ok = torch.broadcast_shapes(mask.shape, x.shape) == x.shape
        except RuntimeError:
            ok = False
        message = f"{name} of shape {_shape(mask)} does not broadcast to x of shape {full}"
    else:
        ok = _shape(mask) == full or (broadcast == "rows" and _shape(mask) == row)
        rows = f" or {row} (one mask for every row)" if broadcast == "rows" else ""
        message = f"{name} must have shape {full}{rows}, got shape {_shape(mask)}"
    if not ok:
        raise ValueError(f"{message}: {hint}" if hint else message)
    if dtype is not None and _kind(mask.dtype) != dtype:
        raise TypeError(f"{name} must be a {dtype} Tensor, got {mask.dtype}")
    return mask


def check_stacked(xs, ys, names: tuple[str, str] = ("xs", "ys")) -> tuple[int, int]:
    """``(E, B)`` of environment-stacked ``xs`` ``(E, B, ...)`` and ``ys`` ``(E, B, ...)``.

    Both must be Tensors with ``E, B >= 1`` and the same first two sizes; else a clear error.
    """
    for name, t in zip(names, (xs, ys), strict=True):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a Tensor of shape (E, B, ...), got {type(t).__name__}")
        if t.ndim < 2 or t.shape[0] < 1 or t.shape[1] < 1:
            raise ValueError(
                f"{name} must be env-stacked with shape (E, B, ...), E, B >= 1; got {_shape(t)}"
            )
    if xs.shape[:2] != ys.shape[:2]:
        raise ValueError(
            f"{names[0]} and {names[1]} must be stacked alike, (E, B, ...) with the same E and B; "
            f"got {names[0]} {_shape(xs)} and {names[1]} {_shape(ys)}"
        )
    return xs.shape[0], xs.shape[1]
