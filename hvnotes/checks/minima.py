"""Checkers of notebook 01 (consistency of minima)."""

from __future__ import annotations

from hvnotes.checks.runner import run_checks


def check_quadratic_inconsistency(fn) -> bool:
    """Check a learner's ``fn(hessians, eps)`` (``hessians`` ``(E, n, n)``, positive definite)
    against :func:`hvnotes.consistency.quadratic_inconsistency`."""
    import numpy as np

    from hvnotes import consistency

    rng = np.random.default_rng(2021)

    def spd(n):
        q, _ = np.linalg.qr(rng.normal(size=(n, n)))
        return (q * rng.uniform(0.05, 2.0, size=n)) @ q.T

    def agrees(hessians, eps, what):
        def case():
            got = float(fn(np.array(hessians), eps))
            want = consistency.quadratic_inconsistency(np.array(hessians), eps)
            assert np.isclose(got, want, rtol=1e-6), f"{what}: expected {want:.4g}, got {got:.4g}"

        return case

    paper = [np.diag([0.05, 1.0]), np.diag([1.0, 0.05])]
    same = spd(2)
    cases = [
        ("the paper's example diag(.05, 1), diag(1, .05), eps = .01", agrees(paper, 0.01, "paper")),
        ("identical environments give eps", agrees([same, same], 0.05, "identical")),
        ("order of environments does not matter", agrees(paper[::-1], 0.01, "swapped")),
    ]
    cases += [
        (f"random non-diagonal pair {i}", agrees([spd(2), spd(2)], 0.02, f"pair {i}"))
        for i in range(3)
    ]
    cases.append(("three environments in 3-D", agrees([spd(3) for _ in range(3)], 0.1, "3 envs")))
    return run_checks("quadratic_inconsistency", cases)


def check_bound_constant(fn) -> bool:
    """Check ``fn(a, b)``: ``I^eps / (eps * ratio^2)`` for diagonal pairs ``(M, n)``, against
    :func:`hvnotes.consistency.quadratic_inconsistency` and :func:`~hvnotes.consistency.volume_ratio`
    computed matrix by matrix (eigenvalues and the Karcher mean, not the diagonal shortcut)."""
    import numpy as np

    from hvnotes import consistency

    rng = np.random.default_rng(3)

    def agrees(a, b, what):
        def case():
            got = np.asarray(fn(np.array(a), np.array(b)), dtype=float).reshape(-1)
            pairs = [np.array([np.diag(x), np.diag(y)]) for x, y in zip(a, b, strict=True)]
            want = [
                consistency.quadratic_inconsistency(h, 1.0) / consistency.volume_ratio(h) ** 2
                for h in pairs
            ]
            assert got.shape == (len(want),), (
                f"{what}: expected shape ({len(want)},), got {got.shape}"
            )
            assert np.allclose(got, want, rtol=1e-6), (
                f"{what}: expected {np.round(want, 4)}, got {np.round(got, 4)}"
            )

        return case

    cases = [
        ("the paper's example", agrees([[0.05, 1.0]], [[1.0, 0.05]], "paper")),
        ("the counterexample diag(.05, 1), I", agrees([[0.05, 1.0]], [[1.0, 1.0]], "counter")),
        ("identical environments give 1", agrees([[0.3, 2.0]], [[0.3, 2.0]], "identical")),
        ("five random 2-D pairs", agrees(*np.exp(rng.uniform(-3, 3, (2, 5, 2))), "random 2-D")),
        ("three random 4-D pairs", agrees(*np.exp(rng.uniform(-3, 3, (2, 3, 4))), "random 4-D")),
    ]
    return run_checks("bound_constant", cases)


def check_proposition_slip(fn) -> bool:
    """Check ``fn() -> (line, constant)``: the line of the paper's proof of Proposition 3 (App.
    A.2, as numbered in notebook 01) that does not follow from the one before, and the constant
    that repairs it. The hints say how to find them without giving them away."""
    import numbers

    def answer():
        got = fn()
        if not isinstance(got, tuple | list) or len(got) != 2:
            raise AssertionError(f"return a pair (line, constant), got {got!r}")
        line, constant = got
        if isinstance(line, bool) or not isinstance(line, numbers.Integral) or not 1 <= line <= 6:
            raise AssertionError(f"the line is a whole number from 1 to 6, got {line!r}")
        if isinstance(constant, bool) or not isinstance(constant, numbers.Real):
            raise AssertionError(f"the constant is a number, got {constant!r}")
        return int(line), float(constant)

    def right_line():
        line, _ = answer()
        assert line == 4, (
            f"line {line} holds for every positive a and b; evaluate lines 1-6 on one pair, "
            "say a = (100, 1), b = (1, 1), and see where the value jumps the wrong way"
        )

    def right_constant():
        _, constant = answer()
        assert abs(constant - 4) < 1e-9, (
            f"with {constant:g} the line is not an identity; expand ((a + b) / 2)^2 / (ab) and "
            "compare it with (a + b)^2 / (ab)"
        )

    cases = [
        ("the line that does not follow", right_line),
        ("the constant that makes it true", right_constant),
    ]
    return run_checks("proposition_slip", cases)
