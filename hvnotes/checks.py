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


# === Notebook 02 checkers ===


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


# === Notebook 03 checkers ===


def _rrr_cases_setup():
    """A seeded float64 MLP and a batch, shared by the notebook 03 checkers."""
    import torch

    from hvnotes import models

    gen = torch.Generator().manual_seed(3)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(3)
    model = models.mlp(6, (5, 4), 3).double()
    torch.random.set_rng_state(torch_state)  # leave the notebook's random stream untouched
    x = torch.randn(7, 6, generator=gen, dtype=torch.float64)
    annotations = torch.rand(7, 6, generator=gen) < 0.4
    return model, x, annotations


def check_rrr_penalty(fn: Callable) -> bool:
    """Check ``fn(model, x, annotations, l2_grads) -> scalar``: the right-reasons term of RRR.

    The reference is ``rrr.rrr_loss(...)[2]``: ``λ1 · mean_n Σ_d (A_nd ∂/∂x_nd Σ_k log p_k)²``,
    differentiable with respect to the parameters (double backprop).
    """
    import torch

    from hvnotes import rrr

    model, x, annotations = _rrr_cases_setup()
    y = torch.zeros(len(x), dtype=torch.long)

    def reference(a, lam):
        return rrr.rrr_loss(model, x, y, a, lam)[2]

    def close(a, b, what):
        assert torch.is_tensor(a) and a.numel() == 1, f"{what}: return a scalar tensor"
        assert torch.allclose(a.detach().double().reshape(()), b.detach(), rtol=1e-6, atol=1e-12), (
            f"{what}: got {a.item():.6g}, expected {b.item():.6g}"
        )

    def value_per_row():
        close(fn(model, x, annotations, 10.0), reference(annotations, 10.0), "per-row mask")

    def value_shared():
        shared = annotations[0]
        close(fn(model, x, shared, 2.0), reference(shared, 2.0), "one mask for every row")

    def zero_mask():
        none = torch.zeros_like(annotations)
        close(fn(model, x, none, 10.0), reference(none, 10.0), "all-False mask (expect 0)")

    def trains_parameters():
        out = fn(model, x, annotations, 1.0)
        assert out.requires_grad, "the penalty must depend on the parameters: create_graph=True?"
        params = list(model.parameters())
        got = torch.autograd.grad(out, params, allow_unused=True)
        want = torch.autograd.grad(reference(annotations, 1.0), params)
        for g, w in zip(got, want, strict=True):
            assert g is not None and torch.allclose(g, w, rtol=1e-5, atol=1e-10), (
                "its gradient with respect to the parameters differs from the reference"
            )

    return run_checks(
        "rrr_penalty",
        [
            ("value with one mask per row", value_per_row),
            ("value with one mask shared by all rows", value_shared),
            ("zero annotations give zero", zero_mask),
            ("double backprop: gradient with respect to the parameters", trains_parameters),
        ],
    )


def check_largest_gradient_mask(fn: Callable) -> bool:
    """Check ``fn(grads, cutoff) -> BoolTensor``: per example, ``|g| > cutoff · max |g|``."""
    import torch

    gen = torch.Generator().manual_seed(5)
    grads = torch.randn(6, 4, 5, generator=gen) * torch.logspace(-2, 2, 6).view(6, 1, 1)

    def loop_reference(g, cutoff):
        return torch.stack([row.abs() > cutoff * row.abs().max() for row in g])

    def same(cutoff):
        def case():
            got = fn(grads, cutoff)
            assert torch.is_tensor(got) and got.dtype == torch.bool, "return a bool tensor"
            assert got.shape == grads.shape, (
                f"shape {tuple(got.shape)}, expected {tuple(grads.shape)}"
            )
            assert torch.equal(got, loop_reference(grads, cutoff)), "wrong entries marked"

        return case

    def zero_row():
        g = grads.clone()
        g[2] = 0
        assert not fn(g, 0.67)[2].any(), "an all-zero gradient must mark nothing"

    return run_checks(
        "largest_gradient_mask",
        [
            ("cutoff 0.67, examples of very different scales", same(0.67)),
            ("cutoff 0.2", same(0.2)),
            ("cutoff 0 marks every non-zero entry", same(0.0)),
            ("all-zero example", zero_row),
        ],
    )


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


def check_fae_control(
    fn: Callable, rounds=None, l2_grads=None, init_seed: int | None = None
) -> bool:
    """Check ``fn(rounds, l2_grads, init_seed) -> {"annotations", "l2_grads", "seed"}``: the
    control for FAE's last round, which must differ from that round *only* in its annotation
    (the previous round's annotations instead of the union of all masks so far).

    Without ``rounds`` the design is tried on three made-up rounds (no annotation, one
    feature, both features; λ1 = 1, 1, 5; base seed 7), so the check needs no training run."""
    import torch

    if rounds is None:
        from hvnotes import rrr

        masks = [torch.zeros(6, 2, dtype=torch.bool) for _ in range(3)]
        masks[1][:, 0] = True
        masks[2][:] = True
        rounds = [rrr.Round(None, mask, None, None) for mask in masks]
        l2_grads, init_seed = [1.0, 1.0, 5.0], 7

    def design():
        out = fn(rounds, list(l2_grads), init_seed)
        assert isinstance(out, dict), "return a dict with keys annotations, l2_grads, seed"
        missing = {"annotations", "l2_grads", "seed"} - set(out)
        assert not missing, f"missing keys {sorted(missing)}"
        return out

    last = len(rounds) - 1

    def annotation():
        got = design()["annotations"]
        assert torch.is_tensor(got) and got.shape == rounds[last].annotations.shape, (
            "annotations: one mask per training example, like a round's"
        )
        assert not torch.equal(got, rounds[last].annotations), (
            "that is the last round's own annotation: the control must differ in it"
        )
        assert torch.equal(got, rounds[last - 1].annotations), (
            "use the annotation the previous round trained with (one rule forbidden, not both)"
        )

    def penalty():
        assert float(design()["l2_grads"]) == float(l2_grads[last]), (
            "same lambda_1 as the last round: the question is whether the penalty alone costs accuracy"
        )

    def seed():
        assert int(design()["seed"]) == init_seed + last, (
            "same initialisation as the last round: FAE seeds round i with init_seed + i"
        )

    return run_checks(
        "fae_control",
        [("the annotation", annotation), ("the penalty", penalty), ("the initialisation", seed)],
    )


# === Notebook 05 checkers ===


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


# === Notebook 06 checkers ===


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


def registered_rate(fn: Callable) -> float | None:
    """Read the learner's predicted rate ``fn()`` (a number in [0, 1]), print one fixed line and
    return it; None (nothing registered) when the exercise is not done yet or not a rate."""
    import math

    try:
        value = fn()
    except NotImplementedError:
        print("✗ prediction: not registered yet (the comparison below leaves it out)")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        print(f"✗ prediction: {value!r} is not a rate in [0, 1]; nothing registered")
        return None
    if math.isnan(value):
        print("✗ prediction: NaN is not a rate; nothing registered")
        return None
    print("✓ prediction registered: it is compared with the measurement below")
    return float(value)


def check_drop_one(fn: Callable) -> bool:
    """Check a learner's ``fn(model, x_row, keep_row)``: the share of the kept features of one
    baseline-sufficient subset whose removal (set to 0) leaves it sufficient (reference:
    :func:`hvnotes.sufficiency.drop_one_redundancy`)."""
    import torch
    from torch import nn

    from hvnotes.sufficiency import drop_one_redundancy

    torch.manual_seed(7)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4))
    x = torch.rand(12, 3, 4, generator=torch.Generator().manual_seed(8))
    keeps = torch.rand(12, 3, 4, generator=torch.Generator().manual_seed(9)) > 0.3
    want = drop_one_redundancy(model, x, keeps)

    def agree():
        checked = 0
        for i in range(len(x)):
            if torch.isnan(want[i]):
                continue
            got = float(fn(model, x[i], keeps[i]))
            assert abs(got - want[i].item()) < 1e-6, (
                f"row {i}: got {got:.3f}, expected {want[i].item():.3f} (drop each kept feature "
                "in turn, fill the rest with 0, count the subsets that keep the prediction)"
            )
            checked += 1
        assert checked >= 3, "too few sufficient rows to check"

    def minimal():
        row = torch.zeros(3, 4)
        row[0, 0] = 1.0
        keep = torch.zeros(3, 4, dtype=torch.bool)
        keep[0, 0] = True
        probe = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
        with torch.no_grad():
            probe[1].weight.zero_()
            probe[1].weight[0, 0] = 1.0
            probe[1].bias.copy_(torch.tensor([0.0, 0.5]))
        got = float(fn(probe, row, keep))
        assert abs(got) < 1e-9, (
            f"a one-pixel subset the prediction needs has nothing to drop: got {got}"
        )

    return run_checks(
        "drop_one",
        [("random subsets of a small MLP", agree), ("a minimal one-pixel subset", minimal)],
    )
