"""Checkers of notebook 03 (Right for the Right Reasons)."""

from __future__ import annotations

from collections.abc import Callable

from hvnotes.checks.runner import run_checks


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
