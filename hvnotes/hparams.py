"""The hyper-parameters of every algorithm in one registry (DomainBed's ``hparams_registry``).

For each algorithm of :mod:`hvnotes.algorithms` and each of its hyper-parameters, an
:class:`HParam`: the default, the check of a value (an error naming it, before any training) and,
where a notebook searches it, a small grid. :func:`resolve` turns a user's overrides into the full,
checked setting; :func:`default_hparams` and :func:`search_grid` read the registry.

Two names keep the meaning their papers give them, which differs between algorithms: ``tau`` is
an agreement threshold in the AND-mask family and the score threshold of SST's mask (both in
[0, 1]); ``eps`` is Adam's denominator guard in Temporal AND-mask and the robust radius in SST.
PGD's iterations are ``pgd_steps``, never ``steps`` (the length of a training run). Beside the
algorithms, ``"objective"`` holds the common hyper-parameters of a loss of one's own
(:class:`hvnotes.algorithms.Objective`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from torch import Tensor

from hvnotes import seeding, validation
from hvnotes.notions import NOTIONS

__all__ = ["REGISTRY", "HParam", "default_hparams", "resolve", "search_grid"]


class HParam(NamedTuple):
    """One hyper-parameter: its default, the check of a value, and a search grid (or None)."""

    default: object
    check: Callable[[str, object], object]
    grid: tuple | None = None


def _real(**bounds) -> Callable:
    return lambda name, value: validation.check_number(name, value, **bounds)


def _integer(low: int) -> Callable:
    return lambda name, value: validation.check_integer(name, value, low=low)


def _choice(*choices) -> Callable:
    return lambda name, value: validation.check_choice(name, value, choices)


def _flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def _pair(name: str, value, check: Callable) -> tuple:
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{name} must be a pair of numbers, got {value!r}")
    return tuple(check(name, v) for v in value)


def _betas(name: str, value) -> tuple[float, float]:
    return _pair(name, value, _real(low=0.0, high=1.0, high_open=True))


def _bounds(name: str, value) -> tuple[float, float]:
    low, high = _pair(name, value, _real())
    if not low < high:
        raise ValueError(f"{name} must be (low, high) with low < high, got {value!r}")
    return low, high


def _baseline(name: str, value):
    """SST's fill: one number, or a finite tensor of fills (one per feature) as a Tensor."""
    if isinstance(value, Tensor) and value.numel() > 1:
        return validation.check_tensor(name, value)
    return validation.check_number(name, value)


def _seed(name: str, value) -> int | None:
    return None if value is None else seeding.resolve_seed(value, name)


_UNIT = _real(low=0.0, high=1.0)
_COMMON = {
    "lr": HParam(1e-3, _real(positive=True)),
    "weight_decay": HParam(0.0, _real(low=0.0)),
    "optimizer": HParam("adam", _choice("adam", "adamw", "sgd")),
}

#: algorithm name -> hyper-parameter name -> :class:`HParam`. The grids are the tuning budgets
#: of the notebooks that search (05's three values of each method's main knob; ERM, with no knob
#: of its own, gets the weight decay).
REGISTRY: dict[str, dict[str, HParam]] = {
    "ERM": _COMMON | {"weight_decay": HParam(0.0, _real(low=0.0), (1e-2, 1e-1, 1.0))},
    "AND-mask": _COMMON | {
        "tau": HParam(1.0, _UNIT, (0.5, 0.75, 1.0)),
        "rescale": HParam(False, _flag),
    },
    "geometric mean": _COMMON | {
        "tau": HParam(1.0, _UNIT, (0.5, 0.75, 1.0)),
        "rescale": HParam(False, _flag),
    },
    "random mask": _COMMON | {  # the AND-mask's null twin: its kept count, random positions
        "tau": HParam(1.0, _UNIT),
        "rescale": HParam(False, _flag),
        "seed": HParam(None, _seed),
    },
    "SAND-mask": _COMMON | {  # tau = 1 would mask everything (DomainBed's default): use < 1
        "tau": HParam(0.5, _UNIT, (0.25, 0.5, 0.75)),
        "k": HParam(10.0, _real(positive=True), (1.0, 10.0, 100.0)),
        "rescale": HParam(False, _flag),
    },
    "Temporal AND-mask": {  # its own optimizer: Adam with a masked first moment
        "lr": _COMMON["lr"],
        "weight_decay": _COMMON["weight_decay"],
        "tau": HParam(0.5, _UNIT, (0.3, 0.5, 0.7)),
        "beta3": HParam(0.9, _real(low=0.0, high=1.0, high_open=True)),
        "betas": HParam((0.9, 0.999), _betas),
        "eps": HParam(1e-8, _real(positive=True)),
    },
    "IRMv1": _COMMON | {
        "irm_weight": HParam(100.0, _real(low=0.0), (10.0, 100.0, 1000.0)),
        "irm_anneal": HParam(100, _integer(0)),
    },
    "RRR": _COMMON | {
        "l2_grads": HParam(10.0, _real(low=0.0), (1.0, 10.0, 100.0)),
        "quantity": HParam(
            "sum_log_probs", _choice("sum_log_probs", "sum_probs", "max_prob", "max_log_prob")
        ),
    },
    "SST": _COMMON | {
        "xi": HParam(1.0, _real(low=0.0), (0.1, 0.3, 1.0, 3.0, 10.0)),
        "lam": HParam(1.0, _real(low=0.0)),
        "tau": HParam(0.5, _UNIT),
        "threshold": HParam("ste", _choice("ste", "hard")),
        "notion": HParam("baseline", _choice(*NOTIONS)),
        "baseline": HParam(0.0, _baseline),
        "eps": HParam(0.12, _real(low=0.0)),
        "alpha": HParam(0.01, _real(positive=True)),
        "pgd_steps": HParam(10, _integer(0)),
        "bounds": HParam((0.0, 1.0), _bounds),
        "seed": HParam(None, _seed),
    },
    "objective": dict(_COMMON),  # any loss of one's own (algorithms.Objective): no knob of its own
}  # fmt: skip


def _registry(name: str) -> dict[str, HParam]:
    return REGISTRY[validation.check_choice("algorithm", name, tuple(REGISTRY))]


def default_hparams(name: str) -> dict:
    """Every hyper-parameter of algorithm ``name`` at its default."""
    return {key: spec.default for key, spec in _registry(name).items()}


def search_grid(name: str) -> dict[str, tuple]:
    """The hyper-parameters of ``name`` that a notebook searches, each with its grid."""
    return {key: spec.grid for key, spec in _registry(name).items() if spec.grid is not None}


def resolve(name: str, hparams: Mapping | None) -> dict:
    """Defaults overridden by ``hparams``, each value checked; unknown names refused."""
    specs = _registry(name)
    hparams = dict(hparams or {})
    unknown = sorted(set(hparams) - set(specs))
    if unknown:
        raise ValueError(f"{name} takes the hyper-parameters {sorted(specs)}, got {unknown}")
    out = default_hparams(name) | hparams
    return {key: specs[key].check(key, value) for key, value in out.items()}
