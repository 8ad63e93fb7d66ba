"""Exercise checkers, one module per notebook.

Each checker tests a learner's function against the course's reference on seeded and edge cases
and prints one fixed line: ``✓ <name>: n/n checks passed`` on success, or the failed cases with a
hint. The success line is what nbval compares, so it never contains numbers that vary.

A checker is ``check_<exercise>(fn)``: it builds a list of ``(description, thunk)`` cases and
hands them to :func:`run_checks`. Notebooks call them as ``checks.check_<exercise>``; the modules
below only sort them by notebook (``map`` 00, ``minima`` 01, ``andmask`` 02, ``rrr`` 03, ``sst`` 04,
``benchmark`` 05, ``capstone`` 06; ``predictions`` for the registered predictions of several).

Every ``check_*`` exported here runs inside :func:`~hvnotes.checks.runner.isolated_rng`: whatever
a checker seeds or draws, the notebook's random streams (``random``, NumPy, torch) are left as
they were.
"""

from hvnotes.checks.andmask import (
    check_and_mask,
    check_keep_probability,
    check_tau_choice,
    reference_tau_choice,
)
from hvnotes.checks.benchmark import (
    check_coin_level,
    check_irm_penalty,
    compare_predictions,
    registered_predictions,
)
from hvnotes.checks.capstone import (
    check_fourier_concentration,
    check_paired_interval,
    check_risk_score,
    registered_prediction,
)
from hvnotes.checks.map import check_follows, check_tab_says_nothing, check_tab_share
from hvnotes.checks.minima import (
    check_bound_constant,
    check_proposition_slip,
    check_quadratic_inconsistency,
)
from hvnotes.checks.predictions import registered_rate
from hvnotes.checks.rrr import (
    check_fae_control,
    check_lambda_choice,
    check_largest_gradient_mask,
    check_rrr_penalty,
    reference_lambda_choice,
)
from hvnotes.checks.runner import Case, isolated_rng, rng_isolated, run_checks
from hvnotes.checks.sst import (
    check_credit,
    check_drop_one,
    check_project,
    check_straight_through,
)

__all__ = [
    "Case",
    "check_and_mask",
    "check_bound_constant",
    "check_coin_level",
    "check_credit",
    "check_drop_one",
    "check_fae_control",
    "check_follows",
    "check_fourier_concentration",
    "check_irm_penalty",
    "check_keep_probability",
    "check_lambda_choice",
    "check_largest_gradient_mask",
    "check_paired_interval",
    "check_project",
    "check_proposition_slip",
    "check_quadratic_inconsistency",
    "check_risk_score",
    "check_rrr_penalty",
    "check_straight_through",
    "check_tab_says_nothing",
    "check_tab_share",
    "check_tau_choice",
    "compare_predictions",
    "isolated_rng",
    "reference_lambda_choice",
    "reference_tau_choice",
    "registered_prediction",
    "registered_predictions",
    "registered_rate",
    "rng_isolated",
    "run_checks",
]

for _name in __all__:  # every checker leaves the caller's random streams untouched
    if _name.startswith("check_"):
        globals()[_name] = rng_isolated(globals()[_name])
del _name
