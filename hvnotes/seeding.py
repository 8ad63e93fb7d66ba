"""The base seed of a run, and the seeds that every random draw derives from it.

A notebook calls ``hvnotes.setup(0)``; the base seed is then 0, or the value of the environment
variable ``HVNOTES_SEED`` when that is set (``make robustness`` runs every notebook under several
base seeds). Every random draw of the course — data, environments, initialisation, batch order,
PGD starts, probe draws — takes its seed from :func:`derive_seed`, so changing the base seed
changes all of them and nothing escapes it:

* ``derive_seed(k)`` is the ``k``-th seed of this run, ``1000 * base + k``. With base 0 the
  seeds are 0, 1, 2, …, the numbers a reader sees in the code.
* a package function whose ``seed`` argument is ``None`` (the default) uses ``derive_seed(0)``.

Same base seed and same machine give the same numbers; another base seed gives another,
equally valid run, on which every asserted claim of the course must still hold.
"""

from __future__ import annotations

import contextlib
import os

import torch

from hvnotes import validation

_SEED_RANGE = 2**32
_STREAMS = 1000  # derived seeds per base seed

_base = 0


def _check_seed(seed, name: str = "seed") -> int:
    """``seed`` as an int in [0, 2**32): Python or NumPy ints, or a 0-d integer tensor."""
    try:
        seed = validation.check_integer(name, seed)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(seed).__name__}") from None
    if not 0 <= seed < _SEED_RANGE:
        raise ValueError(f"{name} must be in [0, 2**32), got {seed}")
    return seed


def seed_from_env(default: int) -> int:
    """``HVNOTES_SEED`` as an int when it is set, else ``default``."""
    raw = os.environ.get("HVNOTES_SEED")
    if raw is None or raw.strip() == "":
        return _check_seed(default)
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"HVNOTES_SEED must be a non-negative integer, got {raw!r}") from None
    value = _check_seed(value, "HVNOTES_SEED")
    if value * _STREAMS >= _SEED_RANGE:
        raise ValueError(f"HVNOTES_SEED must be < {_SEED_RANGE // _STREAMS}, got {value}")
    return value


def set_base_seed(seed: int) -> None:
    """Make ``seed`` the base seed of this run (``hvnotes.setup`` calls this)."""
    global _base
    seed = _check_seed(seed)
    if seed * _STREAMS >= _SEED_RANGE:
        raise ValueError(f"the base seed must be < {_SEED_RANGE // _STREAMS}, got {seed}")
    _base = seed


def base_seed() -> int:
    """The base seed of this run (0 until ``hvnotes.setup`` says otherwise)."""
    return _base


def derive_seed(offset: int = 0) -> int:
    """The ``offset``-th seed of this run: ``1000 * base_seed() + offset``.

    Use a different offset for each independent stream of a notebook (data, initialisation,
    batches, …); with base 0 the result is the offset itself.
    """
    offset = _check_seed(offset, "offset")
    if offset >= _STREAMS:
        raise ValueError(f"offset must be < {_STREAMS}, got {offset}")
    return _base * _STREAMS + offset


def resolve_seed(seed: int | None, name: str = "seed") -> int:
    """``seed`` checked, or ``derive_seed(0)`` when it is None (the package's default)."""
    return derive_seed(0) if seed is None else _check_seed(seed, name)


def generator(seed: int | None = None, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with ``resolve_seed(seed)``."""
    seed = resolve_seed(seed)
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device must be a torch.device or its name ('cpu', 'cuda'), got {device!r}"
        ) from None
    return torch.Generator(device=device).manual_seed(seed)


@contextlib.contextmanager
def torch_seed(seed: int | None = None):
    """Run a block with torch's global RNG seeded by ``resolve_seed(seed)``, then restore it.

    For code that draws from the global RNG (a module's default initialisation): the block is
    reproducible, and the caller's random stream continues as if the block had not run.
    """
    seed = resolve_seed(seed)
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
