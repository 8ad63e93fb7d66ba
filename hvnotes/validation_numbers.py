"""Checks of scalar arguments: numbers, counts, choices, callables and random generators.

Part of :mod:`hvnotes.validation` (which re-exports every name here): a bad argument gets a
``TypeError`` (wrong kind of thing) or a ``ValueError`` (right kind, wrong value or range) that
names it and says what was expected. NaN and inf are refused wherever a number is expected;
NumPy scalars and 0-d tensors are welcome. Imports only torch, NumPy and the standard library.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "check_callable", "check_choice", "check_generator", "check_integer", "check_number",
    "check_positive_int",
]  # fmt: skip


# how the checks describe a tensor in their messages (shared with the tensor checks)
def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _kind(dtype: torch.dtype) -> str:
    """``"bool"``, ``"float"``, ``"complex"`` or ``"integer"``."""
    if dtype == torch.bool:
        return "bool"
    return "float" if dtype.is_floating_point else "complex" if dtype.is_complex else "integer"


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
