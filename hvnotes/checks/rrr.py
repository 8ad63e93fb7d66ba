"""Checkers of notebook 03 (Right for the Right Reasons)."""

from __future__ import annotations

from collections.abc import Callable

from hvnotes.checks.runner import run_checks


def _rrr_cases_setup():
    """A seeded float64 MLP and a batch, shared by the notebook 03 checkers."""
    import torch

    from hvnotes import models, seeding

    gen = torch.Generator().manual_seed(3)
    with seeding.torch_seed(3):  # restores the caller's torch RNG afterwards, even on an error
        model = models.mlp(6, (5, 4), 3).double()
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


def _made_up_rounds(n: int, shape: tuple[int, ...], seed: int):
    """Three FAE rounds on ``n`` made-up examples of ``shape`` (no training needed): round 0 has
    no annotation, round 1 part of the first rule, round 2 parts of both rules; and the rules."""
    import torch

    from hvnotes import rrr

    gen = torch.Generator().manual_seed(seed)
    rules = torch.zeros(shape, dtype=torch.bool)
    rules.view(-1)[:: max(2, rules.numel() // 6)] = True  # a few scattered rule positions
    first = rules.clone()
    first.view(-1)[first.view(-1).nonzero()[1::2]] = False  # rule "1": half of the rule positions
    hit = lambda region: region & (torch.rand(n, *shape, generator=gen) < 0.6)  # noqa: E731
    round_1 = hit(first.expand(n, *shape))
    round_2 = round_1 | hit(rules.expand(n, *shape))
    masks = [torch.zeros(n, *shape, dtype=torch.bool), round_1, round_2]
    return [rrr.Round(None, mask, None, None) for mask in masks], rules


def check_fae_control(
    fn: Callable, rounds=None, l2_grads=None, init_seed: int | None = None, rules=None
) -> bool:
    """Check ``fn(rounds, l2_grads, init_seed, rules) -> {"annotations", "l2_grads", "seed"}``:
    a control for FAE's last round that annotates as much, but none of the rules' pixels.

    Any design with these properties passes: the same initialisation as the last round (FAE
    seeds round i with ``init_seed + i``), the same λ1, the same annotated area (as many
    annotated entries as the last round's annotations) and no annotated entry on ``rules``
    (a bool mask broadcastable to one example). Without ``rounds`` the design is tried on two
    sets of made-up rounds of different shapes, so the check needs no training run.
    """
    import torch

    if rounds is None:
        cases = [(*_made_up_rounds(12, (5, 5, 3), 7), [1.0, 1.0, 5.0], 7)]
        cases.append((*_made_up_rounds(9, (4, 6), 11), [0.5, 2.0, 2.0], 40))
    else:
        cases = [(rounds, list(l2_grads), init_seed, torch.as_tensor(rules).bool())]

    def designs():
        for made_up, forbidden, lams, seed in cases:
            out = fn(made_up, list(lams), seed, forbidden)
            assert isinstance(out, dict), "return a dict with keys annotations, l2_grads, seed"
            missing = {"annotations", "l2_grads", "seed"} - set(out)
            assert not missing, f"missing keys {sorted(missing)}"
            yield out, made_up, forbidden, lams, seed

    def area():
        for out, made_up, _, _, _ in designs():
            got, last = out["annotations"], made_up[-1].annotations
            assert torch.is_tensor(got) and got.shape == last.shape, (
                f"annotations: a mask shaped like a round's, {tuple(last.shape)}"
            )
            assert int(got.bool().sum()) == int(last.sum()), (
                f"the same annotated area as the last round: {int(last.sum())} annotated "
                f"entries, got {int(got.bool().sum())}"
            )

    def off_rules():
        for out, _, forbidden, _, _ in designs():
            on_rules = int((out["annotations"].bool() & forbidden).sum())
            assert on_rules == 0, f"{on_rules} annotated entries lie on the rules' pixels"

    def penalty():
        for out, _, _, lams, _ in designs():
            assert float(out["l2_grads"]) == float(lams[-1]), (
                "the same lambda_1 as the last round: the question is what the penalty alone costs"
            )

    def seed():
        for out, made_up, _, _, init_seed in designs():
            assert int(out["seed"]) == init_seed + len(made_up) - 1, (
                "the same initialisation as the last round: FAE seeds round i with init_seed + i"
            )

    return run_checks(
        "fae_control",
        [
            ("the annotated area", area),
            ("no rule pixel annotated", off_rules),
            ("the penalty", penalty),
            ("the initialisation", seed),
        ],
    )


def reference_lambda_choice(sweep) -> float:
    """The λ1 of the sweep's best row on the *shifted* validation split (first row on ties)."""
    return float(sweep.loc[sweep["shifted val"].idxmax(), "lambda_1"])


def check_lambda_choice(fn: Callable) -> bool:
    """Check ``fn(sweep) -> float``: the λ1 to use, chosen on the shifted validation split.

    ``sweep`` is a DataFrame with columns ``lambda_1``, ``confounded val``, ``shifted val`` and,
    sometimes, ``test``; the choice may read neither the confounded split nor the test set.
    """
    import pandas as pd

    made_up = pd.DataFrame(
        {
            "lambda_1": [0.0, 0.01, 1.0, 100.0, 1e4],
            "confounded val": [0.93, 0.91, 0.90, 0.89, 0.87],
            "shifted val": [0.74, 0.88, 0.90, 0.91, 0.86],
            "test": [0.73, 0.89, 0.92, 0.90, 0.87],
        }
    )

    def picks(table, want, what):
        got = fn(table.copy())
        assert isinstance(got, int | float) and not isinstance(got, bool), "return a number"
        assert float(got) == want, f"{what}: got lambda_1 = {got:g}, expected {want:g}"

    def shifted():
        picks(made_up, 100.0, "the best shifted-validation row")

    def no_test():
        picks(made_up.drop(columns="test"), 100.0, "without a test column (never read it)")

    def reordered():
        table = made_up.iloc[::-1].reset_index(drop=True)
        table.loc[0, "shifted val"] = 0.95  # now lambda_1 = 1e4 is best on the shifted split
        picks(table, 1e4, "rows in another order, another winner")

    return run_checks(
        "lambda_choice",
        [
            ("chosen on the shifted validation split", shifted),
            ("the test set is not needed", no_test),
            ("no position or value hard-coded", reordered),
        ],
    )
