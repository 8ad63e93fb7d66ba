"""Checkers of notebook 04 (Sufficient Subset Training)."""

from __future__ import annotations

from collections.abc import Callable

from hvnotes.checks.runner import run_checks


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


def check_drop_one(fn: Callable) -> bool:
    """Check a learner's ``fn(model, x_row, keep_row)``: the share of the kept features of one
    baseline-sufficient subset whose removal (set to 0) leaves it sufficient (reference:
    :func:`hvnotes.sufficiency.drop_one_redundancy`)."""
    import torch
    from torch import nn

    from hvnotes.sufficiency import drop_one_redundancy

    def quiet(build):  # layers draw their initial weights from the global RNG: restore it after
        with torch.random.fork_rng(devices=[]):
            return build()

    model = quiet(
        lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4))
    )
    init = torch.Generator().manual_seed(7)  # the weights the check uses: a local generator
    with torch.no_grad():
        for p in model.parameters():
            p.copy_((torch.rand(p.shape, generator=init) * 2 - 1) / p.shape[-1] ** 0.5)
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
        probe = quiet(lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 2)))
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


def check_credit(fn: Callable) -> bool:
    """``fn(rate, keep, generator)``: how much an explanation adds to a sufficiency rate.

    ``rate(mask) -> float`` is a made-up sufficiency rate on 16-feature inputs ``(N, 4, 4)``
    whose right answer is known: a network that survives whatever is kept, one where a larger
    mask survives more often just for being larger, and one whose prediction rests on four
    features. The credit must be about 0 (within 0.05) wherever the explanation selects nothing in
    particular, and large for the explanation that names the four features.
    """
    import torch

    n = 64
    true = torch.zeros(n, 4, 4, dtype=torch.bool)
    true[:, 0, :] = True  # the prediction rests on the first row of 4 features

    def draw_mask(count: int, seed: int) -> torch.Tensor:
        ranks = torch.rand(n, 16, generator=torch.Generator().manual_seed(seed)).argsort(1)
        return (ranks.argsort(1) < count).view(n, 4, 4)

    def credit(rate, keep, seed=11) -> float:
        out = fn(rate, keep.clone(), torch.Generator().manual_seed(seed))
        assert isinstance(out, int | float) or (
            isinstance(out, torch.Tensor) and out.numel() == 1
        ), "return one number"
        return float(out)

    def robust_network(mask):  # survives whatever is kept
        return 0.9

    def size_buys_survival(mask):  # a larger mask survives more often, for its size alone
        return 0.2 + 0.8 * mask.float().mean().item()

    def rests_on_four(mask):  # survives only where the mask covers all four features
        return (mask | ~true).flatten(1).all(1).float().mean().item()

    def near(rate, keep, target, what):
        value = credit(rate, keep)
        assert abs(value - target) <= 0.05, f"{what}: credit {value:.3f}, expected about {target}"

    def names_the_features():
        value = credit(rests_on_four, true)
        assert value >= 0.5, f"credit {value:.3f} for the right explanation, expected >= 0.5"

    cases = [
        ("a network that survives whatever is kept",
         lambda: near(robust_network, true, 0.0, "robust network")),
        ("the empty mask of that network",
         lambda: near(robust_network, torch.zeros_like(true), 0.0, "empty mask")),
        ("a random mask where size alone buys survival",
         lambda: near(size_buys_survival, draw_mask(8, 1), 0.0, "random mask of half the features")),
        ("the explanation that names what the prediction rests on", names_the_features),
        ("a random explanation of the same size there",
         lambda: near(rests_on_four, draw_mask(4, 2), 0.0, "random mask of four features")),
    ]  # fmt: skip
    return run_checks("credit", cases)
