"""The one runner every checker uses: run the cases, print one fixed line.

Checkers never change the learner's global random state: :func:`isolated_rng` saves the state of
``random``, NumPy and torch (CUDA included) and restores it afterwards, also when the block raises;
:func:`run_checks` runs its cases inside it, and :func:`rng_isolated` wraps a whole checker.
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Callable, Iterator, Sequence

Case = tuple[str, Callable[[], None]]


@contextlib.contextmanager
def isolated_rng() -> Iterator[None]:
    """Run a block and restore the global RNGs of ``random``, NumPy and torch after it (also on
    an error), so that seeding or drawing inside the block leaves the caller's streams as they
    were."""
    import numpy as np
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def rng_isolated(checker: Callable) -> Callable:
    """``checker`` run inside :func:`isolated_rng` (same name, signature and docstring)."""

    @functools.wraps(checker)
    def isolated(*args, **kwargs):
        with isolated_rng():
            return checker(*args, **kwargs)

    return isolated


def _check_cases(name, cases) -> list[Case]:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str (the exercise's name), got {type(name).__name__}")
    if isinstance(cases, str) or not isinstance(cases, Sequence):
        raise TypeError(f"cases must be a list of (description, thunk) pairs, got {cases!r}")
    for i, case in enumerate(cases):
        if (
            not isinstance(case, tuple | list)
            or len(case) != 2
            or not isinstance(case[0], str)
            or not callable(case[1])
        ):
            raise TypeError(
                f"cases[{i}] must be a pair (description: str, thunk: callable), got {case!r}"
            )
    if not cases:
        raise ValueError(f"{name}: cases is empty; a checker needs at least one case")
    return list(cases)


def run_checks(name: str, cases: Sequence[Case]) -> bool:
    """Run every case (a thunk that raises ``AssertionError`` on failure) and print one summary.

    Returns True when every case passed. Exceptions other than ``AssertionError`` count as
    failures too and are reported with their type, so a crash in the learner's code is readable.
    The cases run inside :func:`isolated_rng`.
    """
    cases = _check_cases(name, cases)
    failures = []
    with isolated_rng():
        for description, case in cases:
            try:
                case()
            except NotImplementedError:
                failures.append(f"{description}: not implemented yet")
            except AssertionError as err:
                failures.append(f"{description}: {err}" if str(err) else description)
            except Exception as err:  # the learner's code crashed: say how
                failures.append(f"{description}: raised {type(err).__name__}: {err}")
    passed = len(cases) - len(failures)
    if failures:
        print(f"✗ {name}: {passed}/{len(cases)} checks passed")
        for line in failures:
            print(f"  - {line}")
        return False
    print(f"✓ {name}: {passed}/{len(cases)} checks passed")
    return True
