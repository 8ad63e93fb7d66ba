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


def check_prediction_band(fn: Callable) -> bool:
    """Check a learner's ``fn(times, level)``: the ``(low, high)`` band where one more seed's grok
    time should fall, a Student-t prediction interval on ``log(time)`` (reference:
    :func:`hvnotes.explanations.prediction_band`)."""
    import math

    import numpy as np

    from hvnotes.explanations import prediction_band

    def close(times, level):
        low, high = (float(v) for v in fn(times, level))
        want = prediction_band(times, level)
        assert math.isclose(low, want[0], rel_tol=1e-6) and math.isclose(
            high, want[1], rel_tol=1e-6
        ), (
            f"times {list(times)}, level {level}: got ({low:.1f}, {high:.1f}), "
            f"expected ({want[0]:.1f}, {want[1]:.1f})"
        )

    def symmetric_in_logs():
        low, high = (float(v) for v in fn([800.0, 1000.0, 1250.0], 0.9))
        assert math.isclose(low * high, 1000.0**2, rel_tol=1e-6), (
            "the band should be symmetric around the geometric mean: work with log(times)"
        )

    def wider_than_min_max():
        times = [900.0, 1000.0, 1100.0, 1200.0, 1300.0]
        low, high = (float(v) for v in fn(times, 0.95))
        assert low < min(times) and high > max(times), (
            "a 95 % band for one more seed is wider than the min-max of five seeds "
            "(did you forget the sqrt(1 + 1/n), or use the normal quantile 1.96?)"
        )

    def random_cases():
        rng = np.random.default_rng(4)
        for n, level in [(5, 0.95), (8, 0.8), (3, 0.99)]:
            close(np.exp(rng.normal(7.0, 0.3, size=n)).tolist(), level)

    return run_checks(
        "prediction_band",
        [
            ("symmetric in log(time)", symmetric_in_logs),
            ("wider than the min-max of the seeds", wider_than_min_max),
            ("random calibration sets", random_cases),
        ],
    )


def registered_prediction(fn: Callable) -> str:
    """Read the learner's registered prediction ``fn()`` (a timing code of
    :data:`hvnotes.explanations.TIMING`), print one fixed line and return it; return ``""``
    (nothing registered) when the exercise is not done yet or the answer is not a timing code."""
    from hvnotes.explanations import TIMING

    try:
        code = fn()
    except NotImplementedError:
        print("✗ prediction: not registered yet (the scoring below leaves your column empty)")
        return ""
    if code not in TIMING:
        print(f"✗ prediction: {code!r} is not one of {TIMING}; nothing registered")
        return ""
    print("✓ prediction registered: it is frozen with the others below")
    return code
