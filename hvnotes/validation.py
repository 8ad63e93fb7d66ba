"""The one place that checks input: tensors, labels, masks, numbers, models and optimizers.

Every public function of the package checks its arguments here *before* it computes or trains
anything, and a bad argument gets a ``TypeError`` (wrong kind of thing) or a ``ValueError``
(right kind, wrong shape, value or range) whose message names the argument and says what was
expected. NaN and inf are errors wherever a number or a tensor of numbers is expected; no shape is
ever broadcast silently (the broadcasts a mask may use are listed in :func:`check_mask`).

It sits at the bottom of the package and imports only torch, NumPy and the standard library, so
every module can use it (the sufficiency checker included, without importing training code).

* numbers: :func:`check_number` (finite, in a range; NumPy scalars and 0-d tensors welcome),
  :func:`check_integer`, :func:`check_positive_int`, :func:`check_choice`, :func:`check_callable`,
  :func:`check_generator`;
* tensors: :func:`check_tensor` (kind, dimensions, shape, dtype, device, finite, rows),
  :func:`check_labels` (1-D integer class indices in range), :func:`check_mask` (the exact shape
  or a documented broadcast), :func:`check_stacked` (environment-stacked ``(E, B, ...)``);
* models: :func:`check_model` (the callable contract), :func:`check_logits` (its output),
  :func:`check_per_example` (no BatchNorm coupling rows), :func:`check_input_dtype`,
  :func:`check_finite_parameters`, :func:`check_optimizer`, and :func:`preserved_mode` /
  :func:`evaluating`, which restore a model's train/eval mode also when the block raises.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "check_callable", "check_choice", "check_finite_parameters", "check_generator",
    "check_input_dtype", "check_integer", "check_labels", "check_logits", "check_mask",
    "check_model", "check_number", "check_optimizer", "check_per_example", "check_positive_int",
    "check_stacked", "check_tensor", "evaluating", "preserved_mode",
]  # fmt: skip

_DTYPE_KINDS = ("float", "integer", "bool")


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _kind(dtype: torch.dtype) -> str:
    """``"bool"``, ``"float"``, ``"complex"`` or ``"integer"``."""
    if dtype == torch.bool:
        return "bool"
    return "float" if dtype.is_floating_point else "complex" if dtype.is_complex else "integer"


# ----------------------------------------------------------------------------- numbers


def _as_scalar(name: str, value):
    """A Python/NumPy scalar, or the item of a 0-d tensor or array; bools are refused."""
    if isinstance(value, Tensor | np.ndarray):
        if value.ndim != 0:
            raise TypeError(
                f"{name} must be a single number, got a {type(value).__name__} of shape "
                f"{tuple(value.shape)}"
            )
        if value.dtype in (torch.bool, np.bool_):
            raise TypeError(f"{name} must be a number, got a boolean {type(value).__name__}")
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return value


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if low == -math.inf and high == math.inf:
        return "finite"
    if high == math.inf:
        return f"{'>' if low_open else '>='} {low:g}"
    if low == -math.inf:
        return f"{'<' if high_open else '<='} {high:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_number(
    name: str, value, *, low: float = -math.inf, high: float = math.inf, positive: bool = False,
    low_open: bool = False, high_open: bool = False,
) -> float:  # fmt: skip
    """``value`` as a finite ``float`` in ``[low, high]`` (``positive``: ``> 0``), else an error.

    Accepts Python and NumPy numbers and 0-d tensors or arrays (``np.float32(1.0)``,
    ``torch.tensor(0.01)``); refuses bools, NaN and inf. ``low_open`` / ``high_open`` exclude
    the bound itself.
    """
    value = float(_as_scalar(name, value))
    if positive:
        low, low_open = max(low, 0.0), low_open or low <= 0.0
    ok = math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low)
    ok = ok and (value < high if high_open else value <= high)
    if not ok:
        bound = _interval(low, high, low_open, high_open)
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


def check_integer(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (either may be None), else an error.

    Accepts Python and NumPy integers and 0-d integer tensors; refuses bools and floats, even
    integral ones (``3.0``: a float where a count is meant is usually a mistake).
    """
    if isinstance(value, Tensor) and value.ndim == 0 and _kind(value.dtype) == "integer":
        value = value.item()
    elif isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu":
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "" if low is None else f">= {low}"
        hi = "" if high is None else f"<= {high}"
        raise ValueError(
            f"{name} must be an int {' and '.join(b for b in (lo, hi) if b)}, got {value}"
        )
    return value


def check_positive_int(name: str, value, low: int = 1) -> int:
    """A count: :func:`check_integer` with ``low`` (1 by default), every failure a ``ValueError``
    (the form the package's count arguments, ``steps``, ``epochs``, ``batch_size``..., raise)."""
    try:
        return check_integer(name, value, low=low)
    except TypeError as err:
        raise ValueError(str(err)) from None


def check_choice(name: str, value, choices: Sequence):
    """``value`` if it is one of ``choices``, else a ``ValueError`` listing them."""
    if isinstance(value, Tensor | np.ndarray) or value not in tuple(choices):
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_callable(name: str, value) -> Callable:
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")
    return value


def check_generator(name: str, generator) -> torch.Generator | None:
    """``generator``: a ``torch.Generator`` or None."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


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


# ----------------------------------------------------------------------------- models


def check_model(name: str, model, *, module: bool = False):
    """``model``: a callable mapping inputs to outputs; an ``nn.Module`` when ``module``.

    Functions that only need a model's outputs accept any callable (Captum's ``forward_func``
    convention); functions that train it, or read its parameters, need a module.
    """
    if module and not isinstance(model, nn.Module):
        raise TypeError(
            f"{name} must be a torch.nn.Module (its parameters are trained or read), got "
            f"{type(model).__name__}"
        )
    if not callable(model):
        raise TypeError(
            f"{name} must be a callable that maps inputs to logits, got {type(model).__name__}"
        )
    return model


def check_logits(name: str, out, n: int | None = None) -> Tensor:
    """A model's output as logits: a floating-point Tensor ``(N, C)``, finite, ``n`` rows."""
    if not isinstance(out, Tensor):
        raise TypeError(f"{name} must return a Tensor of logits (N, C), got {type(out).__name__}")
    if out.ndim != 2:
        raise ValueError(
            f"{name} must return logits of shape (N, C), one row per input, got shape "
            f"{_shape(out)}"
            + (" (a single output per row? give it C >= 2 outputs)" if out.ndim == 1 else "")
        )
    if n is not None and len(out) != n:
        raise ValueError(f"{name} returned {len(out)} rows of logits for {n} inputs")
    if not out.is_floating_point():
        raise TypeError(f"{name} must return floating-point logits, got {out.dtype}")
    if not torch.isfinite(out).all():
        raise ValueError(
            f"{name} returned NaN or inf logits: are its weights and the inputs finite?"
        )
    return out


def check_per_example(name: str, model) -> None:
    """Refuse a model whose examples interact: a BatchNorm layer in training mode.

    Per-example quantities (per-environment gradients, input gradients) assume that one row's
    output does not depend on the other rows of the batch; BatchNorm in training mode normalises
    with the batch's statistics, so it does. Put the model in eval mode, or use GroupNorm.
    """
    if not isinstance(model, nn.Module):
        return
    for sub_name, sub in model.named_modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm) and sub.training:
            raise ValueError(
                f"{name} has a BatchNorm layer in training mode ({sub_name or 'the model'}): its "
                "examples interact, so per-example gradients are not defined; call "
                f"{name}.eval() first, or use GroupNorm"
            )


def check_finite_parameters(name: str, model) -> None:
    """Refuse a module with a NaN or inf parameter (a plain callable passes)."""
    if not isinstance(model, nn.Module):
        return
    for p_name, p in model.named_parameters():
        if p.is_floating_point() and not torch.isfinite(p).all():
            raise ValueError(f"{name}'s parameter {p_name} holds NaN or inf values")


def check_input_dtype(model, x: Tensor, name: str = "x") -> None:
    """A clear error when ``x`` cannot go through ``model``: float64 into float32 weights, or
    another device. A plain callable, or a module without parameters, passes."""
    if not isinstance(model, nn.Module):
        return
    param = next(iter(model.parameters()), None)
    if param is None:
        return
    if x.is_floating_point() and x.dtype != param.dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the model's parameters are {param.dtype}: "
            f"convert one of them ({name}.to({param.dtype}) or model.to({x.dtype}))"
        )
    if x.device != param.device:
        raise ValueError(
            f"{name} is on {x.device} but the model is on {param.device}: move one of them"
        )


def check_optimizer(optimizer, model: nn.Module) -> None:
    """``optimizer``: a ``torch.optim.Optimizer`` that updates ``model``'s parameters."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    mine = {id(p) for p in model.parameters() if p.requires_grad}
    theirs = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if mine and not mine & theirs:
        raise ValueError("optimizer does not update any of the model's parameters")


@contextlib.contextmanager
def preserved_mode(model) -> Iterator:
    """Save the train/eval mode of ``model`` and of every submodule; restore it after the block,
    also when the block raises. A plain callable passes through."""
    if not isinstance(model, nn.Module):
        yield model
        return
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def evaluating(model) -> Iterator:
    """Put ``model`` in eval mode for the block and restore its mode after, even on an error.

    A plain callable (no ``.train``/``.eval``) passes through unchanged.
    """
    with preserved_mode(model):
        if isinstance(model, nn.Module):
            model.eval()
        yield model
