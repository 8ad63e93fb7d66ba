"""Unit tests of hvnotes.sst: each against an independent computation or a property."""

import itertools

import pytest
import torch
from torch import nn

from hvnotes import checks, sst, train
from hvnotes.models import DualHeadMLP


def _linear(weight: torch.Tensor, bias: torch.Tensor | None = None) -> nn.Module:
    """A flattening linear classifier with the given ``(C, n)`` weight."""
    lin = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        lin.weight.copy_(weight)
        lin.bias.copy_(torch.zeros(weight.shape[0]) if bias is None else bias)
    return nn.Sequential(nn.Flatten(), lin)


@pytest.fixture
def small():
    torch.manual_seed(0)
    model = DualHeadMLP((4, 4), (16,), 3)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(12, 4, 4, generator=g)
    keep = torch.rand(12, 4, 4, generator=g) < 0.4
    return model, x, keep


# --- PGD -------------------------------------------------------------------------------------


def test_pgd_keeps_kept_features_and_stays_in_ball_and_range(small):
    model, x, keep = small
    target = model(x).argmax(1)
    z = sst.pgd_complement(model, x, keep, target, 0.12, 0.01, 20, torch.Generator().manual_seed(0))
    assert torch.equal(z[keep], x[keep])
    assert (z - x).abs().max() <= 0.12 + 1e-6
    assert z.min() >= 0 and z.max() <= 1
    assert not torch.equal(z[~keep], x[~keep])  # the complement was actually moved


def test_pgd_raises_the_loss_over_its_random_start(small):
    model, x, keep = small
    target = model(x).argmax(1)

    def loss(z):
        return nn.functional.cross_entropy(model(z), target, reduction="none")

    start = sst.pgd_complement(
        model, x, keep, target, 0.2, 0.02, 0, torch.Generator().manual_seed(3)
    )
    end = sst.pgd_complement(
        model, x, keep, target, 0.2, 0.02, 20, torch.Generator().manual_seed(3)
    )
    assert torch.equal(start[keep], x[keep]) and (start - x).abs().max() <= 0.2 + 1e-6
    assert (loss(end) > loss(start)).all()
    assert (loss(end) > loss(x)).all()


def test_pgd_reaches_the_closed_form_worst_case_of_a_linear_model():
    # two classes, target 0: CE grows with (w1 - w0)·x, so the worst complement sits at
    # x + eps * sign(w1 - w0), clipped to [0, 1]; enough steps of alpha reach that corner.
    g = torch.Generator().manual_seed(0)
    w = torch.randn(2, 9, generator=g)
    model = _linear(w)
    x = torch.rand(5, 3, 3, generator=g)
    keep = torch.zeros(5, 3, 3, dtype=torch.bool)
    keep[:, 0, :] = True
    target = torch.zeros(5, dtype=torch.long)
    z = sst.pgd_complement(model, x, keep, target, 0.1, 0.05, 10, g)
    corner = (x + 0.1 * (w[1] - w[0]).sign().view(3, 3)).clamp(0, 1)
    want = torch.where(keep, x, corner)
    assert torch.allclose(z, want, atol=1e-6)


def test_pgd_rejects_bad_arguments(small):
    model, x, keep = small
    target = model(x).argmax(1)
    with pytest.raises(ValueError, match="eps"):
        sst.pgd_complement(model, x, keep, target, -0.1, 0.01, 10)
    with pytest.raises(ValueError, match="alpha"):
        sst.pgd_complement(model, x, keep, target, 0.1, 0.0, 10)
    with pytest.raises(ValueError, match="target"):
        sst.pgd_complement(model, x, keep, target[:3], 0.1, 0.01, 10)


def test_training_pgd_stays_in_ball_and_leaves_no_parameter_grads(small):
    model, x, keep = small
    target = model(x).argmax(1)
    fill = sst._training_fill(
        model, x, keep.float(), target, "robust", 0.0, 0.1, 0.02, 5, (0.0, 1.0), None
    )
    assert (fill - x).abs().max() <= 0.1 + 1e-6 and fill.min() >= 0 and fill.max() <= 1
    assert all(p.grad is None for p in model.parameters())


# --- complement ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["baseline", "probabilistic"])
def test_complement_keeps_kept_features_exactly(small, mode):
    _, x, keep = small
    z = sst.complement(x, keep, mode, baseline=0.3, generator=torch.Generator().manual_seed(0))
    assert z.shape == x.shape
    assert torch.equal(z[keep], x[keep])
    if mode == "baseline":
        assert (z[~keep] == 0.3).all()
    else:
        assert z.min() >= 0 and z.max() < 1 and not torch.equal(z[~keep], x[~keep])


def test_complement_pool_fills_with_pixels_of_pool_images(small):
    _, x, keep = small
    pool = torch.stack([torch.full((4, 4), v) for v in (0.25, 0.5, 0.75)])
    z = sst.complement(x, keep, "probabilistic", pool=pool)
    for row, k in zip(z, keep, strict=True):
        filled = row[~k].unique()
        assert len(filled) <= 1 and (len(filled) == 0 or filled.item() in (0.25, 0.5, 0.75))


def test_complement_broadcasts_one_mask_over_the_batch(small):
    _, x, _ = small
    keep = torch.zeros(4, 4, dtype=torch.bool)
    keep[1, 2] = True
    z = sst.complement(x, keep, "baseline")
    assert torch.equal(z[:, 1, 2], x[:, 1, 2]) and z.sum() == x[:, 1, 2].sum()


# --- sufficiency -----------------------------------------------------------------------------


@pytest.mark.parametrize("notion", sst.NOTIONS)
def test_full_mask_is_always_sufficient(small, notion):
    model, x, _ = small
    full = torch.ones_like(x, dtype=torch.bool)
    assert sst.sufficiency_rate(model, x, full, notion, eps=0.3, steps=5) == 1.0


def test_baseline_rate_matches_a_hand_built_loop(small):
    model, x, keep = small
    expected = 0
    for xi, ki in zip(x, keep, strict=True):
        masked = xi.clone()
        for i, j in itertools.product(range(4), range(4)):
            if not ki[i, j]:
                masked[i, j] = 0.0
        with torch.no_grad():
            expected += int(model(masked[None]).argmax() == model(xi[None]).argmax())
    assert sst.sufficiency_rate(model, x, keep, "baseline") == pytest.approx(expected / len(x))


def test_probabilistic_rate_matches_closed_form():
    # class 1 iff feature 0 > 0.7. Keeping feature 0 is sufficient; keeping nothing gives a
    # uniform draw, which preserves class 1 with probability 0.3 and class 0 with 0.7.
    model = _linear(
        torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]), torch.tensor([0.7, 0.0])
    )
    x = torch.tensor([[0.9, 0.2, 0.3, 0.4], [0.1, 0.9, 0.9, 0.9]]).view(2, 2, 2)
    keep0 = torch.zeros(2, 2, 2, dtype=torch.bool)
    keep0[:, 0, 0] = True
    g = torch.Generator().manual_seed(0)
    assert sst.sufficiency_rate(model, x, keep0, "probabilistic", n_draws=50, generator=g) == 1.0
    rates = sst.row_sufficiency(
        model, x, ~torch.ones_like(keep0), "probabilistic", n_draws=4000, generator=g
    )
    assert rates[0].item() == pytest.approx(0.3, abs=0.03)
    assert rates[1].item() == pytest.approx(0.7, abs=0.03)


def test_empty_mask_robust_rate_is_adversarial_robustness():
    # a linear 2-class model with margin m at x: PGD flips it iff eps * ||w1 - w0||_1 > m.
    w = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0]])
    model = _linear(w)
    x = torch.tensor([[0.9, 0.2, 0.2, 0.2], [0.9, 0.25, 0.25, 0.2]]).view(2, 2, 2)  # margins .3, .2
    empty = torch.zeros(2, 2, 2, dtype=torch.bool)
    rates = sst.row_sufficiency(model, x, empty, "robust", eps=0.06, alpha=0.02, steps=10)
    assert rates.tolist() == [1.0, 0.0]  # 0.06 * 4 = 0.24 is below .3 and above .2


def test_unknown_notion_and_misshaped_masks_raise(small):
    model, x, keep = small
    with pytest.raises(ValueError, match="notion"):
        sst.sufficiency_rate(model, x, keep, "adversarial")
    with pytest.raises(ValueError, match="keep must have shape"):
        sst.sufficiency_rate(model, x, keep.view(12, 16), "baseline")
    with pytest.raises(ValueError, match="keep must have shape"):
        sst.complement(x, keep[:5], "baseline")
    with pytest.raises(TypeError, match="bool"):
        sst.complement(x, keep.float(), "baseline")
    with pytest.raises(ValueError, match="mode"):
        sst.complement(x, keep, "robust")


# --- training: the threshold and the loss ----------------------------------------------------


def test_straight_through_value_is_hard_and_gradient_is_the_sigmoids():
    a = torch.linspace(-4, 4, 41, requires_grad=True)
    s = torch.sigmoid(a)
    mask = sst.straight_through(s, 0.5)
    assert torch.equal(mask.detach(), (s >= 0.5).float())
    mask.sum().backward()
    sig = torch.sigmoid(a.detach())
    assert torch.allclose(a.grad, sig * (1 - sig), atol=1e-7)


def test_hard_threshold_carries_no_gradient():
    s = torch.sigmoid(torch.randn(10, requires_grad=True))
    assert not sst.hard_threshold(s).requires_grad


def test_faithfulness_reaches_the_mask_head_only_through_straight_through():
    torch.manual_seed(0)
    x = torch.rand(8, 4, 4)
    y = torch.randint(0, 3, (8,))
    grads = {}
    for threshold in sst.THRESHOLDS:
        torch.manual_seed(1)
        model = DualHeadMLP((4, 4), (16,), 3)
        total, *_ = sst.sst_loss(model, x, y, xi=0.0, threshold=threshold)
        total.backward()
        grads[threshold] = model.mask_head.weight.grad
    assert grads["hard"] is None or grads["hard"].abs().max() == 0
    assert grads["ste"].abs().max() > 0


def test_sst_loss_checks_its_arguments(small):
    model, x, _ = small
    y = torch.zeros(len(x), dtype=torch.long)
    with pytest.raises(ValueError, match="notion"):
        sst.sst_loss(model, x, y, notion="noise")
    with pytest.raises(ValueError, match="threshold"):
        sst.sst_loss(model, x, y, threshold="soft")
    with pytest.raises(TypeError, match="logits_and_scores"):
        sst.sst_loss(nn.Flatten(), x, y)


# --- post-hoc searches -----------------------------------------------------------------------


def _slow_backward_selection(model, x_row, cls):
    """Reference: one candidate at a time, no batching."""
    cur = x_row.flatten().clone()
    alive, order = list(range(cur.numel())), []
    with torch.no_grad():
        while alive:
            best, best_p = None, -1.0
            for i in alive:
                trial = cur.clone()
                trial[i] = 0.0
                p = model(trial.view(1, *x_row.shape)).softmax(1)[0, cls].item()
                if p > best_p:
                    best, best_p = i, p
            alive.remove(best)
            cur[best] = 0.0
            order.append(best)
    return order[::-1]


def test_greedy_sis_matches_a_slow_reference_and_passes_the_checker(small):
    model, x, _ = small
    keep, info = sst.greedy_sis(model, x[:3])
    assert not info["timed_out"].any()
    for x_row, k in zip(x[:3], keep, strict=True):
        cls = model(x_row[None]).argmax().item()
        order = _slow_backward_selection(model, x_row, cls)
        for size in range(17):  # the shortest sufficient prefix of the reference order
            ref = torch.zeros(16, dtype=torch.bool)
            ref[order[:size]] = True
            if sst.sufficiency_rate(model, x_row[None], ref.view(1, 4, 4), "baseline") == 1.0:
                break
        assert torch.equal(k.flatten(), ref)
    assert sst.sufficiency_rate(model, x[:3], keep, "baseline") == 1.0


def test_greedy_sis_counts_timeouts_as_full_masks(small):
    model, x, _ = small
    keep, info = sst.greedy_sis(model, x[:2], timeout=0.0)
    assert info["timed_out"].all() and keep.all() and (info["size"] == 1.0).all()


def test_topk_search_returns_the_smallest_passing_k(small):
    model, x, _ = small
    attr = torch.rand(x.shape, generator=torch.Generator().manual_seed(5))
    keep = sst.topk_search(model, x, attr)
    for x_row, a_row, k in zip(x, attr, keep, strict=True):
        order = a_row.flatten().argsort(descending=True)
        for size in range(17):
            ref = torch.zeros(16, dtype=torch.bool)
            ref[order[:size]] = True
            if sst.sufficiency_rate(model, x_row[None], ref.view(1, 4, 4), "baseline") == 1.0:
                break
        assert torch.equal(k.flatten(), ref)


def test_random_mask_like_keeps_the_count(small):
    _, _, keep = small
    rnd = sst.random_mask_like(keep, torch.Generator().manual_seed(0))
    assert torch.equal(sst.explanation_size(rnd), sst.explanation_size(keep))
    assert not torch.equal(rnd, keep)


def test_dual_head_shapes():
    model = DualHeadMLP((5, 3), (8, 4), 4)
    logits, scores = model.logits_and_scores(torch.rand(2, 5, 3))
    assert logits.shape == (2, 4) and scores.shape == (2, 5, 3)
    assert ((scores > 0) & (scores < 1)).all()
    with pytest.raises(ValueError, match="shape"):
        model(torch.rand(2, 15))


# --- exercise checkers -----------------------------------------------------------------------


def test_checkers_pass_the_reference_and_fail_wrong_answers(capsys):
    assert checks.check_straight_through(sst.straight_through)
    assert not checks.check_straight_through(lambda s, tau: (s >= tau).float())  # no gradient
    assert not checks.check_straight_through(lambda s, tau: (s > tau).float() + s - s.detach())
    assert not checks.check_straight_through(lambda s, tau: s)  # soft mask
    assert checks.check_project(sst.project)
    assert not checks.check_project(lambda a, x, k, eps, b: a.clamp(*b))  # no ball, no keep
    assert not checks.check_project(
        lambda a, x, k, eps, b: torch.min(torch.max(a, x - eps), x + eps)  # kept features move
    )
    out = capsys.readouterr().out
    assert "✓ straight_through: 4/4" in out and "✓ project: 4/4" in out


def test_train_sst_logs_epoch_zero_and_evaluates_with_the_checker():
    torch.manual_seed(0)
    x = torch.rand(64, 4, 4)
    y = torch.randint(0, 3, (64,))
    model = DualHeadMLP((4, 4), (16,), 3)
    hist = sst.train_sst(
        model, x, y, epochs=2, batch_size=32, x_eval=x, y_eval=y, notion="robust", steps=2
    )
    assert hist["epoch"].tolist() == [0, 1, 2]
    assert set(hist.columns) >= {"loss", "seconds", "acc", "size", "faith_baseline"}
    keep = sst.sst_explain(model, x)
    assert hist["size"].iloc[-1] == pytest.approx(sst.explanation_size(keep).mean().item())
    assert hist["faith_baseline"].iloc[-1] == pytest.approx(
        sst.sufficiency_rate(model, x, keep, "baseline")
    )


def test_evaluate_notions_full_and_empty_masks(small):
    model, x, _ = small
    full = sst.evaluate_notions(model, x, torch.ones_like(x, dtype=torch.bool), pgd_steps=(3,))
    assert full == {"size": 1.0, "baseline": 1.0, "probabilistic": 1.0, "PGD-3": 1.0}
    empty = sst.evaluate_notions(model, x, torch.zeros_like(x, dtype=torch.bool), pgd_steps=(3,))
    with torch.no_grad():
        blank = model(torch.zeros(1, 4, 4)).argmax().item()
        same = (model(x).argmax(1) == blank).float().mean().item()
    assert empty["size"] == 0.0 and empty["baseline"] == pytest.approx(same)


# ----------------------------------------------------------------------------- separation, cost


def test_training_never_calls_the_checkers_fill_code(monkeypatch):
    from hvnotes import sufficiency

    def forbidden(*args, **kwargs):
        raise AssertionError("SST training used the checker's code to build its masked inputs")

    for name in ("complement", "pgd_complement", "project", "_uniform", "row_sufficiency"):
        monkeypatch.setattr(sufficiency, name, forbidden)
    torch.manual_seed(0)
    model = DualHeadMLP((4, 4), (8,), 3)
    x, y = torch.rand(12, 4, 4), torch.randint(0, 3, (12,))
    for notion in sst.NOTIONS:
        total, *_ = sst.sst_loss(model, x, y, notion=notion, steps=2)
        total.backward()
        sst.train_sst(model, x, y, epochs=1, batch_size=6, notion=notion, steps=2)


def test_greedy_sis_skips_features_already_at_the_fill_value():
    calls = []

    def counting(batch):  # a callable model: logits from the pixel sum, counting the rows seen
        calls.append(len(batch))
        s = batch.flatten(1).sum(1)
        return torch.stack([s, 1.0 - s], 1)

    x = torch.zeros(1, 10, 10)
    x[0, :2, :3] = 0.5  # 6 of 100 pixels are not at the fill value 0
    keep, _ = sst.greedy_sis(counting, x)
    cheap = sum(calls)
    calls.clear()
    keep_naive, _ = sst.greedy_sis(counting, x, skip_at_fill=False)
    naive = sum(calls)
    assert cheap < naive / 20, (cheap, naive)  # ~6 candidates per step instead of ~100
    assert keep.sum() <= 6 and not (keep & (x == 0)).any()  # only ink pixels can matter
    assert torch.equal(
        sst.row_sufficiency(counting, x, keep, "baseline"), torch.ones(1)
    )  # the explanation passes the checker
    assert keep_naive.shape == keep.shape


# ----------------------------------------------------------------------------- issue 17 additions


def test_any_iterate_tracking_equals_a_slow_loop_over_prefixes():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))
    x = torch.rand(20, 4, 4)
    keep = torch.zeros(20, 4, 4, dtype=torch.bool)
    keep[:, :2] = True
    target = train.predict(model, x)
    steps = 6
    _, held = sst.pgd_complement(
        model, x, keep, target, 0.3, 0.1, steps, torch.Generator().manual_seed(3), track=True
    )
    # the same random start and deterministic steps: iterate k is PGD run for k steps
    slow = torch.ones(20, dtype=torch.bool)
    for k in range(steps + 1):
        z = sst.pgd_complement(
            model, x, keep, target, 0.3, 0.1, k, torch.Generator().manual_seed(3)
        )
        slow &= train.predict(model, z) == target
    assert torch.equal(held, slow)
    strict = sst.sufficiency_rate(model, x, keep, "robust", eps=0.3, alpha=0.1, steps=steps,
                                  any_iterate=True, generator=torch.Generator().manual_seed(3))  # fmt: skip
    last = sst.sufficiency_rate(model, x, keep, "robust", eps=0.3, alpha=0.1, steps=steps,
                                generator=torch.Generator().manual_seed(3))  # fmt: skip
    assert strict == slow.float().mean().item() <= last


def test_drop_one_redundancy_matches_a_slow_loop():
    from hvnotes.sufficiency import drop_one_redundancy

    torch.manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(9, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.rand(6, 3, 3)
    keep = torch.rand(6, 3, 3) > 0.4
    got = drop_one_redundancy(model, x, keep)
    pred = train.predict(model, x)
    for i in range(6):
        if not (train.predict(model, torch.where(keep[i], x[i], 0.0)[None]) == pred[i]).item():
            assert torch.isnan(got[i])
            continue
        kept = keep[i].flatten().nonzero().squeeze(1).tolist()
        free = []
        for j in kept:
            smaller = keep[i].flatten().clone()
            smaller[j] = False
            z = torch.where(smaller.view(3, 3), x[i], 0.0)
            free.append((train.predict(model, z[None]) == pred[i]).item())
        assert got[i].item() == pytest.approx(sum(free) / len(free))


def test_exact_minimal_subsets_match_brute_force():
    from hvnotes.posthoc import exact_minimal_subsets

    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 4))
    x = torch.rand(5, 2, 3)
    got = exact_minimal_subsets(model, x)
    pred = train.predict(model, x)
    for i in range(5):
        sizes = [
            len(s)
            for r in range(7)
            for s in itertools.combinations(range(6), r)
            if train.predict(model, torch.where(
                torch.isin(torch.arange(6), torch.tensor(s, dtype=torch.long)).view(2, 3), x[i], 0.0
            )[None]).item() == pred[i].item()
        ]  # fmt: skip
        assert got[i].sum().item() == min(sizes)
        assert sst.row_sufficiency(model, x[i : i + 1], got[i : i + 1], "baseline").item() == 1.0
    with pytest.raises(ValueError, match="features"):
        exact_minimal_subsets(model, torch.rand(1, 5, 5))


def test_released_fills_are_what_the_audit_says():
    from hvnotes.released import released_noise_fill, released_pgd_fill

    x = torch.rand(4, 5, 5)
    keep = torch.zeros(4, 5, 5, dtype=torch.bool)
    keep[:, 2] = True
    z = released_pgd_fill(x, keep, 0.1, torch.Generator().manual_seed(0))
    assert torch.equal(z[keep], x[keep])
    assert (z - x).abs().max() <= 0.1 + 1e-6 and z.min() >= 0 and z.max() <= 1
    n = released_noise_fill(x, keep, 0.2, torch.Generator().manual_seed(0))
    assert torch.equal(n[keep], x[keep])
    step = (n - x)[~keep]
    assert (step >= -1e-6).all() and step.max() <= 0.2  # one-sided, local
    raw = (n - x).clamp_min(0)
    unclipped = (x + 0.2 > 1) == False  # noqa: E712
    shared = (
        raw[0][~keep[0] & unclipped[0] & unclipped[1]]
        - raw[1][~keep[1] & unclipped[0] & unclipped[1]]
    )
    assert shared.abs().max() < 1e-6  # the same noise vector for every row


# ----------------------------------------------------------------------------- issue 27 additions


def test_topk_grid_search_on_every_size_equals_the_full_scan(small):
    from hvnotes.posthoc import topk_grid_search

    model, x, _ = small
    attr = sst.attribution(model, x, "saliency")
    full = sst.topk_search(model, x, attr)
    grid = topk_grid_search(model, x, attr, ks=list(range(17)))
    assert torch.equal(full, grid)


def test_topk_grid_search_returns_the_first_passing_grid_size(small):
    from hvnotes.posthoc import topk_grid_search

    model, x, _ = small
    attr = torch.rand(x.shape, generator=torch.Generator().manual_seed(4))
    ks = [0, 2, 5, 9, 16]
    got = topk_grid_search(model, x, attr, ks=ks)
    order = attr.flatten(1).argsort(dim=1, descending=True, stable=True)
    for i in range(len(x)):  # slow loop: each grid size in turn, one row at a time
        for k in ks:
            mask = torch.zeros(16, dtype=torch.bool)
            mask[order[i, :k]] = True
            if sst.row_sufficiency(model, x[i : i + 1], mask.view(1, 4, 4), "baseline").item() == 1:
                break
        assert torch.equal(got[i].flatten(), mask)
    with pytest.raises(ValueError, match="ks"):
        topk_grid_search(model, x, attr, ks=[0, 17])


def test_size_grid_is_geometric_and_covers_the_ends():
    from hvnotes.posthoc import size_grid

    grid = size_grid(784)
    assert grid[0] == 0 and grid[-1] == 784 and grid == sorted(set(grid))
    ratios = [b / a for a, b in zip(grid[1:], grid[2:], strict=False) if a >= 8]
    assert max(ratios) <= 2 ** (1 / 4) * 1.1
    with pytest.raises(ValueError, match="n must"):
        size_grid(0)


def test_credit_over_random_cancels_what_the_network_or_the_size_earns():
    from hvnotes.sufficiency import credit_over_random

    g = torch.Generator().manual_seed(0)
    keep = torch.rand(50, 4, 4, generator=g) < 0.5
    assert credit_over_random(lambda m: 0.9, keep, g) == pytest.approx(0.0)
    by_size = credit_over_random(lambda m: m.float().mean().item(), keep, g, draws=3)
    assert by_size == pytest.approx(0.0, abs=1e-6)  # a random mask keeps as many features
    truth = torch.zeros(50, 4, 4, dtype=torch.bool)
    truth[:, 0] = True

    def rests_on_row_0(m):
        return (m | ~truth).flatten(1).all(1).float().mean().item()

    assert credit_over_random(rests_on_row_0, truth, g) >= 0.9
    with pytest.raises(ValueError, match="draws"):
        credit_over_random(lambda m: 0.5, keep, g, draws=0)


def test_silhouette_reading_matches_a_hand_built_loop():
    from hvnotes.sufficiency import silhouette_reading

    torch.manual_seed(5)
    reader = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    keep = torch.rand(10, 4, 4) < 0.3
    classes = torch.randint(0, 3, (10,))
    slow = [
        reader(torch.where(k, 0.25, 0.0)[None]).argmax(1).item() == c.item()
        for k, c in zip(keep, classes, strict=True)
    ]
    assert silhouette_reading(reader, keep, classes) == pytest.approx(sum(slow) / 10)
    with pytest.raises(ValueError, match="classes"):
        silhouette_reading(reader, keep, classes[:3])


def test_trainers_are_reproducible_and_leave_the_global_rng_alone():
    x, y = torch.rand(40, 4, 4), torch.randint(0, 3, (40,))
    state = torch.random.get_rng_state()
    a, _ = sst.train_standard(x, y, hidden=(8,), classes=3, epochs=1, seed=3)
    b, _ = sst.train_standard(x, y, hidden=(8,), classes=3, epochs=1, seed=3)
    m1, _ = sst.train_sst_model(x, y, hidden=(8,), classes=3, epochs=1, seed=3, batch_size=16)
    m2, _ = sst.train_sst_model(x, y, hidden=(8,), classes=3, epochs=1, seed=3, batch_size=16)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters(), strict=True))


def test_train_sst_evaluates_every_k_epochs_with_the_random_mask_control():
    x, y = torch.rand(32, 4, 4), torch.randint(0, 3, (32,))
    model, hist = sst.train_sst_model(
        x, y, hidden=(8,), classes=3, epochs=5, batch_size=16, x_eval=x, y_eval=y,
        eval_every=2, controls=True, seed=1,
    )  # fmt: skip
    evaluated = hist.dropna(subset=["size"])["epoch"].tolist()
    assert evaluated == [0, 2, 4, 5]
    keep = sst.sst_explain(model, x)
    control = sst.random_mask_like(keep, torch.Generator().manual_seed(1 + 2))
    last = hist.iloc[-1]
    assert last["size"] == pytest.approx(sst.explanation_size(keep).mean().item())
    assert 0 <= last["faith_random"] <= 1
    assert torch.equal(sst.explanation_size(control), sst.explanation_size(keep))


def test_dual_head_forward_is_the_class_head_of_logits_and_scores():
    torch.manual_seed(6)
    model = DualHeadMLP((5, 3), (8, 4), 4)
    x = torch.rand(3, 5, 3)
    assert torch.equal(model(x), model.logits_and_scores(x)[0])


def test_evaluate_notions_adds_a_data_fill_and_checks_every_iterate(small):
    model, x, keep = small
    pool = torch.rand(20, 4, 4, generator=torch.Generator().manual_seed(2))
    last = sst.evaluate_notions(model, x, keep, seed=1, pgd_steps=(5,), alpha=0.05)
    strict = sst.evaluate_notions(
        model, x, keep, seed=1, pgd_steps=(5,), alpha=0.05, any_iterate=True, pool=pool
    )
    assert set(strict) == {"size", "baseline", "probabilistic", "data fill", "PGD-5"}
    assert strict["PGD-5"] <= last["PGD-5"]
    assert 0 <= strict["data fill"] <= 1


def test_credit_checker_passes_the_reference_and_fails_the_empty_and_bare_controls(capsys):
    from hvnotes.sufficiency import credit_over_random

    assert checks.check_credit(credit_over_random)
    assert not checks.check_credit(lambda rate, keep, g: rate(keep))  # the network's share
    assert not checks.check_credit(lambda rate, keep, g: rate(keep) - rate(torch.zeros_like(keep)))
    assert not checks.check_credit(lambda rate, keep, g: rate(keep) - rate(~keep))
    assert "✓ credit: 5/5" in capsys.readouterr().out


def test_drop_one_checker_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    checks.check_drop_one(lambda model, x_row, keep_row: 0.0)
    assert torch.equal(torch.random.get_rng_state(), state)
