"""Exercise checkers.

Each checker tests a learner's function against the course's reference on seeded and edge cases
and prints one fixed line: ``✓ <name>: n/n checks passed`` on success, or the failed cases with a
hint. The success line is what nbval compares, so it never contains numbers that vary.

Notebook modules add checkers here as ``check_<exercise>(fn)``; each builds a list of
``(description, thunk)`` cases and hands them to :func:`run_checks`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Case = tuple[str, Callable[[], None]]


def run_checks(name: str, cases: Sequence[Case]) -> bool:
    """Run every case (a thunk that raises ``AssertionError`` on failure) and print one summary.

    Returns True when every case passed. Exceptions other than ``AssertionError`` count as
    failures too and are reported with their type, so a crash in the learner's code is readable.
    """
    failures = []
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


# === Notebook 01 checkers ===


# === Notebook 02 checkers ===


# === Notebook 03 checkers ===


# === Notebook 04 checkers ===


def check_straight_through(fn: Callable) -> bool:
    """``fn(scores, tau)``: hard ``1[s >= tau]`` forward, the gradient of ``scores`` backward."""
    import torch

    from hvnotes import sst

    def same_value_and_grad(seed: int, tau: float, shape=(4, 7)) -> None:
        g = torch.Generator().manual_seed(seed)
        a = torch.randn(shape, generator=g)
        if seed == 2:
            a[0, :3] = torch.logit(torch.tensor(tau))  # ties: a score equal to tau is kept
        weights = torch.randn(shape, generator=g)
        values, grads = [], []
        for f in (fn, sst.straight_through):
            a_ = a.clone().requires_grad_(True)
            out = f(torch.sigmoid(a_), tau)
            assert isinstance(out, torch.Tensor), "return a Tensor"
            assert out.shape == a.shape, f"output shape {tuple(out.shape)}, expected {shape}"
            (out * weights).sum().backward()
            assert a_.grad is not None, "no gradient reaches the scores: is the mask detached?"
            values.append(out.detach())
            grads.append(a_.grad)
        assert torch.allclose(values[0], values[1], atol=1e-6), "forward must be 1[s >= tau]"
        assert torch.allclose(grads[0], grads[1], atol=1e-6), "backward must be the identity"

    cases = [
        ("random scores, tau = 0.5", lambda: same_value_and_grad(0, 0.5)),
        ("random scores, tau = 0.3", lambda: same_value_and_grad(1, 0.3)),
        ("scores exactly at tau are kept", lambda: same_value_and_grad(2, 0.5)),
        ("a 3-d batch", lambda: same_value_and_grad(3, 0.5, (2, 3, 3))),
    ]
    return run_checks("straight_through", cases)


def check_project(fn: Callable) -> bool:
    """``fn(x_adv, x, keep, eps, bounds)``: the PGD projection onto the allowed complements."""
    import torch

    from hvnotes import sst

    def agrees(seed: int, eps: float, bounds=(0.0, 1.0)) -> None:
        g = torch.Generator().manual_seed(seed)
        x = bounds[0] + (bounds[1] - bounds[0]) * torch.rand(5, 4, 4, generator=g)
        x_adv = x + 0.5 * torch.randn(5, 4, 4, generator=g)
        keep = torch.rand(5, 4, 4, generator=g) < 0.3
        out = fn(x_adv.clone(), x.clone(), keep.clone(), eps, bounds)
        want = sst.project(x_adv, x, keep, eps, bounds)
        assert isinstance(out, torch.Tensor) and out.shape == x.shape, "return a tensor like x"
        assert torch.equal(out[keep], x[keep]), "kept features must equal x exactly"
        assert (out - x).abs().max() <= eps + 1e-6, "outside the eps-ball around x"
        assert out.min() >= bounds[0] and out.max() <= bounds[1], "outside the input range"
        assert torch.allclose(out, want, atol=1e-6), "not the nearest allowed point to x_adv"

    cases = [
        ("eps = 0.12", lambda: agrees(0, 0.12)),
        ("eps = 0.3", lambda: agrees(1, 0.3)),
        ("eps = 0: only x itself is allowed", lambda: agrees(2, 0.0)),
        ("a narrower input range", lambda: agrees(3, 0.2, (0.1, 0.9))),
    ]
    return run_checks("project", cases)


# === Notebook 06 checkers ===
