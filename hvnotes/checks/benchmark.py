"""Checkers of notebook 05 (the shortcut benchmark)."""

from __future__ import annotations

from collections.abc import Callable

from hvnotes.checks.runner import run_checks


def check_irm_penalty(fn: Callable) -> bool:
    """``fn(logits, y)``: IRMv1's ``(d/ds CE(s * logits, y) at s = 1)^2``, differentiable."""
    import torch

    from hvnotes import benchmark

    def same(seed: int, scale: float = 1.0):
        def case():
            g = torch.Generator().manual_seed(seed)
            logits = (torch.randn(16, 10, generator=g) * scale).double()
            y = torch.randint(0, 10, (16,), generator=g)
            values, grads = [], []
            for f in (fn, benchmark.irm_penalty):
                z = logits.clone().requires_grad_(True)
                out = f(z, y)
                assert isinstance(out, torch.Tensor) and out.numel() == 1, "return a scalar"
                assert out.requires_grad, (
                    "the penalty must stay differentiable (create_graph=True): it is trained"
                )
                (grad,) = torch.autograd.grad(out.sum(), z)
                values.append(out.detach().reshape(()))
                grads.append(grad)
            assert torch.allclose(values[0], values[1], rtol=1e-5, atol=1e-10), (
                f"penalty {values[0].item():.4g}, expected {values[1].item():.4g}"
            )
            assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-10), (
                "value right but its gradient with respect to the logits is wrong"
            )

        return case

    return run_checks(
        "irm_penalty",
        [
            ("random logits", same(0)),
            ("large logits (over-confident)", same(1, 5.0)),
            ("small logits (under-confident)", same(2, 0.1)),
        ],
    )


def check_coin_level(fn: Callable) -> bool:
    """``fn(n_envs)``: ``E |mean_e s_e|`` for ``n_envs`` fair ±1 signs, the agreement of pure
    noise; checked against the closed form and against a seeded Monte Carlo estimate."""
    import torch

    from hvnotes import benchmark

    def closed(n_envs: int):
        def case():
            got, want = float(fn(n_envs)), benchmark.coin_agreement(n_envs)
            assert abs(got - want) <= 1e-9, f"n_envs={n_envs}: expected {want:.6f}, got {got:.6f}"

        return case

    def simulated(n_envs: int):
        def case():
            g = torch.Generator().manual_seed(n_envs)
            signs = torch.randint(0, 2, (200_000, n_envs), generator=g).double() * 2 - 1
            estimate = signs.mean(1).abs().mean().item()  # standard error below 0.002
            got = float(fn(n_envs))
            assert abs(got - estimate) < 0.01, (
                f"n_envs={n_envs}: 200,000 simulated draws give {estimate:.4f}, you give {got:.4f}"
            )

        return case

    cases = [(f"E={n}, closed form", closed(n)) for n in (1, 2, 3, 8, 32)]
    cases += [(f"E={n}, simulation", simulated(n)) for n in (5, 16)]
    return run_checks("coin_level", cases)


def registered_predictions(fn: Callable, names) -> dict[str, float] | None:
    """Read the learner's predicted rates ``fn() -> {name: rate}`` (one per name in ``names``,
    each in [0, 1]), print one fixed line and return them; None (nothing registered) when the
    exercise is not done yet or the answer is not such a dict."""
    import math

    names = tuple(names)
    try:
        value = fn()
    except NotImplementedError:
        print("✗ predictions: not registered yet (the comparison below leaves them out)")
        return None
    ok = isinstance(value, dict) and set(value) == set(names)
    ok = ok and all(
        isinstance(v, int | float) and not isinstance(v, bool) and not math.isnan(v) and 0 <= v <= 1
        for v in value.values()
    )
    if not ok:
        print(f"✗ predictions: give a dict with a rate in [0, 1] for each of {list(names)}")
        return None
    print(f"✓ predictions registered for {', '.join(names)}: compared with the measurement below")
    return {k: float(value[k]) for k in names}


def compare_predictions(predictions: dict[str, float] | None, measured) -> None:
    """Print each registered prediction beside its measurement (nothing when none was made)."""
    if predictions is None:
        return
    for name, guess in predictions.items():
        value = float(measured[name])
        print(f"  your prediction for {name}: {guess:.2f}; measured {value:.2f}")
