"""Checkers of notebook 02 (the AND-mask)."""

from __future__ import annotations

from collections.abc import Callable

from hvnotes.checks.runner import run_checks


def check_and_mask(fn) -> bool:
    """Check a learner's ``and_mask(env_grads, tau)`` against :func:`hvnotes.andmask.and_mask`."""
    import torch

    from hvnotes import andmask

    def agrees(g, tau, what):
        def case():
            got = fn(g.clone(), tau)
            assert isinstance(got, torch.Tensor), f"return a Tensor, got {type(got).__name__}"
            assert got.shape == g.shape[1:], (
                f"the mask has one entry per component: shape {tuple(g.shape[1:])}, "
                f"got {tuple(got.shape)}"
            )
            want = andmask.and_mask(g, tau)
            wrong = (got.to(want.dtype) != want).sum().item()
            assert wrong == 0, f"{wrong} of {want.numel()} entries differ ({what})"

        return case

    gen = torch.Generator().manual_seed(0)
    g = torch.randn(8, 6, 5, generator=gen) + torch.randn(6, 5, generator=gen)
    g_zeros = g.clone()
    g_zeros[torch.rand(8, 6, 5, generator=gen) < 0.2] = 0.0
    net_seven = torch.tensor([1.0] * 16 + [-1.0] * 9, dtype=torch.float64).reshape(25, 1)
    cases = [(f"random gradients, tau={tau}", agrees(g, tau, "8 envs")) for tau in (0.25, 0.5, 1.0)]
    cases += [
        ("tau = 0 keeps every component", agrees(g, 0.0, "tau = 0")),
        ("sign(0) counts against agreement", agrees(g_zeros, 0.75, "zeros in the gradients")),
        ("negative agreement counts too (use |mean sign|)", agrees(-g.abs(), 1.0, "all negative")),
        ("tau = k/E is exact: net 7 of 25 envs, tau = 0.28", agrees(net_seven, 0.28, "0.28 * 25")),
    ]
    return run_checks("and_mask", cases)


def check_keep_probability(fn) -> bool:
    """Check ``keep_probability(n_envs, tau)`` (random signs) against the package's closed form."""
    from hvnotes import andmask

    def case(n_envs, tau):
        def run():
            got = float(fn(n_envs, tau))
            want = andmask.keep_probability(n_envs, tau)
            assert abs(got - want) <= 1e-9 + 1e-6 * want, (
                f"n_envs={n_envs}, tau={tau}: expected {want:.6g}, got {got:.6g}"
            )

        return run

    settings = [(2, 0.5), (4, 0.5), (5, 0.6), (16, 0.2), (16, 1.0), (32, 0.8), (7, 0.0)]
    return run_checks("keep_probability", [(f"E={e}, tau={t}", case(e, t)) for e, t in settings])


def reference_tau_choice(n_envs: int, chance: float = 1e-3) -> float:
    """The threshold ``m / n_envs`` that lets the most through while random signs pass it with
    probability below ``chance`` (of equivalent ones, the round value: with no zero gradients
    ``|sum of signs|`` has the parity of ``n_envs``, so ``m = 17`` and ``18`` of 24 are one rule)."""
    from hvnotes import andmask

    safe = {
        m / n_envs: andmask.keep_probability(n_envs, m / n_envs)
        for m in range(n_envs + 1)
        if andmask.keep_probability(n_envs, m / n_envs) < chance
    }
    most = max(safe.values())
    return max(tau for tau, prob in safe.items() if prob == most)


def check_tau_choice(fn: Callable, n_envs: int = 24, chance: float = 1e-3) -> bool:
    """Check ``fn(n_envs) -> tau``: random signs pass the threshold with probability below
    ``chance`` (the shortcut is stopped), and no lower threshold does so too (every higher one
    only lets the mechanism through less often)."""
    from hvnotes import andmask

    def chosen():
        tau = fn(n_envs)
        assert isinstance(tau, int | float) and not isinstance(tau, bool), (
            f"tau should be a number, got {tau!r}"
        )
        assert 0 <= tau <= 1, f"tau should lie in [0, 1], got {tau}"
        return tau

    def stops_chance():
        tau = chosen()
        got = andmask.keep_probability(n_envs, tau)
        assert got < chance, (
            f"random signs pass tau={tau:.3f} with probability {got:.2g}, not below {chance:g}"
        )

    def lowest():
        tau = chosen()
        best = reference_tau_choice(n_envs, chance)
        got, want = andmask.keep_probability(n_envs, tau), andmask.keep_probability(n_envs, best)
        assert got >= want, (
            f"tau={tau:.3f} asks |sum of signs| >= {andmask.required_agreement(tau, n_envs)}; "
            f"{andmask.required_agreement(best, n_envs)} already stops random signs and lets more "
            "of the mechanism through"
        )

    return run_checks(
        f"tau for {n_envs} environments",
        [("a number in [0, 1]", chosen), ("random signs stopped", stops_chance),
         ("no lower threshold would do", lowest)],
    )  # fmt: skip
