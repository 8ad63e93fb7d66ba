"""Checkers of notebook 06 (the grokking capstone)."""

from __future__ import annotations

from collections.abc import Callable

from hvnotes.checks.runner import run_checks


def check_fourier_concentration(fn: Callable) -> bool:
    """Check a learner's ``fn(embed, k)``: the fraction of a ``(..., p, d)`` table's non-constant
    energy in its top ``k`` frequencies along the token axis (reference:
    :func:`hvnotes.phenomena.fourier_concentration`)."""
    import math

    import torch

    from hvnotes.phenomena import fourier_concentration

    def value(out) -> torch.Tensor:
        return torch.as_tensor(out, dtype=torch.float64)

    def waves(p, amplitudes, d=5, seed=0):  # sum of cos(2 pi f t / p + phase_j), one per freq
        gen = torch.Generator().manual_seed(seed)
        t = torch.arange(p, dtype=torch.float64)[:, None]
        table = torch.zeros(p, d, dtype=torch.float64)
        for f, amp in amplitudes.items():
            phase = torch.rand(d, generator=gen, dtype=torch.float64) * 2 * math.pi
            table += amp * torch.cos(2 * math.pi * f * t / p + phase)
        return table

    def one_wave():
        out = value(fn(waves(31, {5: 1.0}), 1))
        assert torch.allclose(out, torch.tensor(1.0, dtype=torch.float64), atol=1e-4), (
            f"a single wave at frequency 5 should give 1.0 for k=1, got {out.item():.4f}"
        )

    def two_waves():
        out = value(fn(waves(31, {3: 2.0, 7: 1.0}), 1))
        assert torch.allclose(out, torch.tensor(0.8, dtype=torch.float64), atol=1e-4), (
            "waves of amplitude 2 and 1: the top frequency holds 4/(4+1) = 0.8 of the energy, "
            f"got {out.item():.4f} (did you square the magnitudes?)"
        )

    def constant_ignored():
        table = waves(31, {3: 2.0, 7: 1.0}) + 10.0
        out = value(fn(table, 1))
        assert torch.allclose(out, torch.tensor(0.8, dtype=torch.float64), atol=1e-4), (
            f"a constant offset must not count (leave frequency 0 out), got {out.item():.4f}"
        )

    def random_tables():
        gen = torch.Generator().manual_seed(1)
        for p, k in [(31, 4), (37, 6), (15, 2)]:
            table = torch.randn(3, p, 8, generator=gen)
            want = fourier_concentration(table, k).double()
            out = value(fn(table, k))
            assert out.shape == want.shape, (
                f"shape {tuple(out.shape)}, expected {tuple(want.shape)}"
            )
            assert torch.allclose(out, want, atol=1e-4), (
                f"p={p}, k={k}: got {out.tolist()}, expected {want.tolist()}"
            )

    return run_checks(
        "fourier_concentration",
        [
            ("one wave, k=1", one_wave),
            ("two waves, k=1", two_waves),
            ("constant offset", constant_ignored),
            ("random tables, batched (3, p, d)", random_tables),
        ],
    )


def check_paired_interval(fn: Callable) -> bool:
    """Check a learner's ``fn(base_times, new_times, budget, level)``: the Student-t interval
    for the mean of ``log(new / base)`` over paired seeds, NaN times counted as the budget
    (reference: :func:`hvnotes.explanations.paired_interval`)."""
    import math

    import numpy as np

    from hvnotes.explanations import paired_interval

    def close(base, new, budget, level):
        low, high = (float(v) for v in fn(base, new, budget, level))
        want = paired_interval(base, new, budget, level)
        assert math.isclose(low, want[0], rel_tol=1e-6, abs_tol=1e-9) and math.isclose(
            high, want[1], rel_tol=1e-6, abs_tol=1e-9
        ), (
            f"base {list(base)}, new {list(new)}, level {level}: got ({low:.3f}, {high:.3f}), "
            f"expected ({want[0]:.3f}, {want[1]:.3f})"
        )

    def doubling():
        low, high = (float(v) for v in fn([400.0, 500.0, 600.0], [800.0, 1000.0, 1200.0], 3000))
        assert math.isclose(low, math.log(2), rel_tol=1e-6) and math.isclose(
            high, math.log(2), rel_tol=1e-6
        ), (
            "every seed took exactly twice as long: the interval should be (log 2, log 2) = "
            f"(0.693, 0.693), got ({low:.3f}, {high:.3f}) (work with the log of each ratio)"
        )

    def pairs_matter():
        base, new = [400.0, 800.0, 1200.0], [440.0, 880.0, 1320.0]
        low, _ = (float(v) for v in fn(base, new, 3000))
        assert low > 0, (
            "each seed is 10 % slower than its own baseline: compare seed i with seed i, "
            f"not the two groups' spreads (got a lower end of {low:.3f})"
        )

    def censored():
        close([500.0, 600.0, 700.0], [float("nan"), 1200.0, 1400.0], 1500, 0.95)

    def random_cases():
        rng = np.random.default_rng(4)
        for n, level in [(3, 0.95), (5, 0.8), (4, 0.99)]:
            base = np.exp(rng.normal(6.5, 0.3, size=n))
            close(base.tolist(), (base * np.exp(rng.normal(0.2, 0.1, size=n))).tolist(), 1e5, level)

    return run_checks(
        "paired_interval",
        [
            ("twice as long on every seed", doubling),
            ("seed i against seed i", pairs_matter),
            ("a run that never groks counts as the budget", censored),
            ("random paired seeds", random_cases),
        ],
    )


def check_risk_score(fn: Callable) -> bool:
    """Check a learner's ``fn(verdicts, null_verdicts)``: the risk-weighted score of one rival,
    one point per prediction that held where the null rival's did not, minus one per failed
    prediction (reference: :func:`hvnotes.explanations.score`)."""
    import pandas as pd

    from hvnotes.explanations import score

    def reference(rival, null):
        table = pd.DataFrame({"rival": rival, "null": null})
        return int(score(table).loc["rival", "score"])

    def case(rival, null, hint):
        got = fn(list(rival), list(null))
        want = reference(rival, null)
        assert got == want, (
            f"verdicts {rival} against the null's {null}: got {got}, expected {want} ({hint})"
        )

    return run_checks(
        "risk_score",
        [
            ("held where the null also held", lambda: case(["held"] * 3, ["held"] * 3,
                                                          "a prediction the null shares earns nothing")),
            ("held where the null failed", lambda: case(["held", "held"], ["failed", "held"],
                                                        "only the first was risky")),
            ("a failure costs a point", lambda: case(["failed", "held"], ["failed", "unclear"],
                                                     "a failure costs a point even where the null failed too")),
            ("unclear and no prediction", lambda: case(["unclear", "", "held"], ["held", "held", "unclear"],
                                                       "unclear earns nothing; '' is no prediction")),
        ],
    )  # fmt: skip


def registered_prediction(fn: Callable) -> str:
    """Read the learner's registered prediction ``fn()`` (a timing code: ``"same"``,
    ``"earlier"``, ``"later"``, ``"never"`` or ``"groks"``), print one fixed line and return it;
    return ``""`` (nothing registered) when the exercise is not done yet or the answer is not a
    timing code."""
    from hvnotes.explanations import OBSERVABLE

    TIMING = tuple(c for c, o in OBSERVABLE.items() if o == "timing")
    try:
        code = fn()
    except NotImplementedError:
        print("✗ prediction: not registered yet (the scoring below leaves your column empty)")
        return ""
    if code not in TIMING:
        print(f"✗ prediction: {code!r} is not one of {TIMING}; nothing registered")
        return ""
    print("✓ prediction registered: it is scored with the others below")
    return code
