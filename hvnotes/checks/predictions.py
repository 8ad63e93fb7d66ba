"""Registered predictions: the learner writes a number down before the run measures it."""

from __future__ import annotations

from collections.abc import Callable


def registered_rate(fn: Callable) -> float | None:
    """Read the learner's predicted rate ``fn()`` (a number in [0, 1]), print one fixed line and
    return it; None (nothing registered) when the exercise is not done yet or not a rate."""
    import math

    try:
        value = fn()
    except NotImplementedError:
        print("✗ prediction: not registered yet (the comparison below leaves it out)")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        print(f"✗ prediction: {value!r} is not a rate in [0, 1]; nothing registered")
        return None
    if math.isnan(value):
        print("✗ prediction: NaN is not a rate; nothing registered")
        return None
    print("✓ prediction registered: it is compared with the measurement below")
    return float(value)
