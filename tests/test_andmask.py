"""Unit tests of hvnotes.andmask against independent references: slow Python loops over
components and environments, per-environment ``autograd.grad``, ``torch.optim.Adam``, closed
forms (binomial keep probabilities), and the data generators' defining properties."""

from __future__ import annotations

import copy
import math
import statistics

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hvnotes import andmask, datasets, models, pooled

# ---------------------------------------------------------------------------------------------
# Slow references: one component at a time, plain Python numbers


def _slow_components(env_grads):
    """Yield (index, [g_e for every env]) as Python floats, one component at a time."""
    flat = env_grads.reshape(env_grads.shape[0], -1).double().tolist()
    for j in range(len(flat[0])):
        yield j, [row[j] for row in flat]


def _sgn(v):
    return (v > 0) - (v < 0)


def slow_and(env_grads, tau, method="and"):
    out = []
    n = env_grads.shape[0]
    for _, g in _slow_components(env_grads):
        count = sum(_sgn(v) for v in g)
        keep = abs(count) >= tau * n - 1e-9  # integer count vs tau * E
        mean = sum(g) / n
        if method == "and":
            out.append(mean if keep else 0.0)
        else:
            geo = math.exp(sum(math.log(abs(v) + 1e-10) for v in g) / n)
            out.append(_sgn(mean) * geo if keep else 0.0)
    return torch.tensor(out, dtype=torch.float64).reshape(env_grads.shape[1:])


def slow_sand(env_grads, tau, k):
    out = []
    n = env_grads.shape[0]
    for _, g in _slow_components(env_grads):
        agreement = abs(sum(_sgn(v) for v in g)) / n
        var = max(statistics.variance(g), 1e-17)
        out.append(max(0.0, math.tanh(k * (agreement - tau) / var)))
    return torch.tensor(out, dtype=torch.float64).reshape(env_grads.shape[1:])


def random_grads(n_envs=7, shape=(5, 6), seed=0, zeros=True):
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(n_envs, *shape, generator=gen)
    # bias some components towards agreement so every mask value occurs
    g += torch.randn(*shape, generator=gen) * 1.5
    if zeros:
        g[torch.rand(n_envs, *shape, generator=gen) < 0.1] = 0.0  # sign(0) = 0 must count
    return g


TAUS = [0.0, 1 / 7, 2 / 7, 0.3, 3 / 7, 0.5, 5 / 7, 0.9, 1.0]


# ---------------------------------------------------------------------------------------------
# The mask and its relatives


@pytest.mark.parametrize("tau", TAUS)
def test_and_mask_matches_slow_loop(tau):
    g = random_grads()
    mask = andmask.and_mask(g, tau)
    assert mask.shape == g.shape[1:] and mask.dtype == g.dtype
    n = g.shape[0]
    for j, col in _slow_components(g):
        keep = abs(sum(_sgn(v) for v in col)) >= tau * n - 1e-9
        assert mask.flatten()[j].item() == float(keep), (j, col)
    torch.testing.assert_close(
        andmask.masked_gradient(g, tau).double(), slow_and(g, tau), rtol=1e-6, atol=1e-7
    )


def test_and_mask_counts_zero_gradients_against_agreement():
    g = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])  # (E=3, 3)
    assert andmask.and_mask(g, 1.0).tolist() == [1.0, 0.0, 0.0]
    assert andmask.and_mask(g, 2 / 3).tolist() == [1.0, 1.0, 0.0]
    assert andmask.and_mask(g, 0.0).tolist() == [1.0, 1.0, 1.0]  # tau = 0 keeps everything


def test_tau_quantisation_is_exact_at_k_over_E():
    # 25 envs, 16 up and 9 down: |sum sign| = 7; 0.28 * 25 = 7.000000000000001 in floating point
    assert 0.28 * 25 > 7
    g = torch.tensor([1.0] * 16 + [-1.0] * 9, dtype=torch.float64).reshape(25, 1)
    assert andmask.and_mask(g, 0.28).item() == 1.0
    assert andmask.and_mask(g, 7 / 25).item() == 1.0
    assert andmask.and_mask(g, 0.2801).item() == 0.0
    g10 = torch.tensor([1.0] * 7 + [0.0] * 3).reshape(10, 1)  # 7 vote, 3 silent
    assert andmask.and_mask(g10, 0.7).item() == 1.0
    assert andmask.and_mask(g10, 0.7000001).item() == 0.0
    assert andmask.required_agreement(0.7, 10) == 7
    assert andmask.required_agreement(0.5, 4) == 2
    assert andmask.required_agreement(0.0, 4) == 0


def test_tau_zero_is_the_plain_mean_exactly():
    g = random_grads(n_envs=9, shape=(4, 3, 2))
    assert torch.equal(andmask.masked_gradient(g, 0.0), g.mean(dim=0))


@pytest.mark.parametrize("tau", [0.0, 3 / 7, 0.8, 1.0])
def test_geometric_mean_matches_slow_loop(tau):
    g = random_grads(seed=1)
    torch.testing.assert_close(
        andmask.masked_gradient(g, tau, method="geom").double(),
        slow_and(g, tau, "geom"),
        rtol=1e-5,
        atol=1e-9,
    )


@pytest.mark.parametrize(("tau", "k"), [(0.0, 10.0), (0.3, 1.0), (0.6, 1e3), (0.5, 0.01)])
def test_sand_mask_matches_slow_loop(tau, k):
    g = random_grads(seed=2, zeros=False)
    torch.testing.assert_close(andmask.sand_mask(g, tau, k).double(), slow_sand(g, tau, k))
    update = andmask.masked_gradient(g, tau, method="sand", k=k)
    torch.testing.assert_close(update, andmask.sand_mask(g, tau, k) * g.mean(0))


def test_sand_mask_guards_zero_variance_and_warns_at_tau_one():
    g = torch.ones(4, 3)  # identical gradients: variance 0
    mask = andmask.sand_mask(g, 0.5, 10.0)
    assert torch.isfinite(mask).all() and torch.allclose(mask, torch.ones(3))
    one_env = andmask.sand_mask(torch.randn(1, 5), 0.5, 10.0)  # variance undefined
    assert torch.isfinite(one_env).all()
    with pytest.warns(UserWarning, match="tau >= 1"):
        assert andmask.sand_mask(random_grads(), 1.0, 10.0).sum() == 0


def test_rescale_never_nan_and_divides_by_kept_fraction():
    g = torch.tensor([[1.0, -1.0, 2.0, 3.0], [-1.0, 1.0, 2.0, 1.0]])
    none_kept = andmask.masked_gradient(g[:, :2], 1.0, rescale=True)
    assert torch.equal(none_kept, torch.zeros(2))
    half = andmask.masked_gradient(g, 1.0, rescale=True)
    torch.testing.assert_close(half, torch.tensor([0.0, 0.0, 4.0, 4.0]))  # mean / 0.5
    for method in ("and", "geom", "sand"):
        for tau in (0.0, 0.5, 0.99):
            out = andmask.masked_gradient(random_grads(), tau, method=method, rescale=True)
            assert torch.isfinite(out).all()


def test_keep_probability_closed_form_and_prop2_norms():
    # values computed independently in the research notes (binomial tails)
    assert andmask.keep_probability(16, 0.2) == pytest.approx(0.45, abs=0.005)
    assert andmask.keep_probability(16, 0.5) == pytest.approx(0.077, abs=0.001)
    assert andmask.keep_probability(16, 1.0) == pytest.approx(2 * 0.5**16)
    assert andmask.keep_probability(80, 0.2) == pytest.approx(0.093, abs=0.001)
    assert andmask.keep_probability(5, 0.0) == 1.0
    df = andmask.random_gradient_norms([4, 16], tau=0.5, dim=4000, trials=4)
    # E||mean||^2 = dim / E; masked: at most dim/E times the keep probability, up to sampling
    assert df.mean_sq_norm.tolist() == pytest.approx([1000.0, 250.0], rel=0.1)
    assert (df.masked_sq_norm < df.mean_sq_norm).all()


# ---------------------------------------------------------------------------------------------
# Per-environment gradients


class Tower(nn.Module):
    """Not a Sequential: exercises the torch.func path of and_mask_step."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 8)
        self.b = nn.Linear(8, 3)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x.flatten(1))))


def stacked_batch(n_envs=5, batch=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    xs = torch.randn(n_envs, batch, 2, 3, generator=gen)
    ys = torch.randint(0, 3, (n_envs, batch), generator=gen)
    return xs, ys


def loop_reference(model, xs, ys):
    """Per environment: its own forward and autograd.grad (the reference code's way)."""
    names, params = zip(*model.named_parameters(), strict=True)
    out = {n: [] for n in names}
    for x, y in zip(xs, ys, strict=True):
        grads = torch.autograd.grad(F.cross_entropy(model(x), y), params)
        for n, g in zip(names, grads, strict=True):
            out[n].append(g)
    return {n: torch.stack(v) for n, v in out.items()}


@pytest.mark.parametrize("make", [lambda: models.mlp(6, (8, 7), 3), Tower])
def test_env_gradients_match_per_env_autograd(make):
    torch.manual_seed(0)
    model = make()
    xs, ys = stacked_batch()
    got = andmask.env_gradients(model, F.cross_entropy, xs, ys)
    want = loop_reference(model, xs, ys)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].shape == want[name].shape
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 4])
def test_pooled_env_gradients_match_per_env_autograd(batch):
    torch.manual_seed(1)
    model = models.mlp(6, (8, 7), 3)
    xs, ys = stacked_batch(n_envs=6, batch=batch)
    loss, got = pooled.pooled_env_gradients(model, F.cross_entropy, xs, ys)
    want = loop_reference(model, xs, ys)
    for name, g in want.items():
        torch.testing.assert_close(got[name], g, rtol=1e-5, atol=1e-6)
        # side effect: .grad is the pooled (ERM) gradient = the mean of the env gradients
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, g.mean(0))
    assert loss.item() == pytest.approx(
        F.cross_entropy(model(xs.flatten(0, 1)), ys.flatten()).item()
    )
    with pytest.raises(TypeError, match="env_gradients"):
        pooled.pooled_env_gradients(Tower(), F.cross_entropy, xs, ys)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("block", [2**18, 7])
def test_streamed_sign_counts_match_env_gradients(batch, block):
    # one example per env uses sign(d a^T) = sign(d) sign(a)^T; small blocks force many chunks
    torch.manual_seed(4)
    model = models.mlp(6, (8, 7), 3)
    xs, ys = stacked_batch(n_envs=9, batch=batch)
    _, counts = pooled.pooled_sign_counts(model, F.cross_entropy, xs, ys, block=block)
    for name, g in loop_reference(model, xs, ys).items():
        assert torch.equal(counts[name], g.sign().sum(0)), name


# ---------------------------------------------------------------------------------------------
# The training step


def _update_with_sgd(model, xs, ys, **kw):
    """The .grad that and_mask_step wrote, read back from an SGD step with lr 1."""
    model = copy.deepcopy(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    loss, kept = andmask.and_mask_step(model, F.cross_entropy, xs, ys, opt, **kw)
    return {n: before[n] - p.detach() for n, p in model.named_parameters()}, loss, kept


@pytest.mark.parametrize("make", [lambda: models.mlp(6, (8, 7), 3), Tower])
def test_tau_zero_step_is_the_erm_step(make):
    torch.manual_seed(2)
    model = make()
    xs, ys = stacked_batch()
    erm = copy.deepcopy(model)
    opt = torch.optim.Adam(erm.parameters(), lr=1e-2, weight_decay=1e-3)
    loss = F.cross_entropy(erm(xs.flatten(0, 1)), ys.flatten())
    loss.backward()
    opt.step()
    masked = copy.deepcopy(model)
    opt = torch.optim.Adam(masked.parameters(), lr=1e-2, weight_decay=1e-3)
    got_loss, kept = andmask.and_mask_step(masked, F.cross_entropy, xs, ys, opt, tau=0.0)
    assert got_loss == pytest.approx(loss.item())
    assert all(v == 1.0 for v in kept.values())
    # tau = 0 takes the pooled ERM step itself, bit for bit, on every kind of model
    for (name, p), q in zip(erm.named_parameters(), masked.parameters(), strict=True):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("make", [lambda: models.mlp(6, (8, 7), 3), Tower])
@pytest.mark.parametrize(
    ("tau", "method", "rescale"),
    [(0.6, "and", False), (0.6, "and", True), (1.0, "and", True), (0.2, "geom", True),
     (0.4, "sand", False), (0.4, "sand", True)],
)  # fmt: skip
def test_step_writes_the_masked_gradient(make, tau, method, rescale):
    torch.manual_seed(3)
    model = make()
    xs, ys = stacked_batch(n_envs=5, batch=3)
    want_grads = loop_reference(model, xs, ys)
    update, _, kept = _update_with_sgd(model, xs, ys, tau=tau, method=method, rescale=rescale)
    for name, g in want_grads.items():
        want = andmask.masked_gradient(g, tau, method=method, rescale=rescale)
        torch.testing.assert_close(update[name], want, rtol=1e-4, atol=1e-6)
        mask = andmask.sand_mask(g, tau, 10.0) if method == "sand" else andmask.and_mask(g, tau)
        assert kept[name] == pytest.approx(mask.mean().item(), abs=1e-6)


def test_weight_decay_acts_after_the_mask():
    # two environments pulling every weight in opposite directions: all masked at tau = 1
    model = nn.Sequential(nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.5, -0.25]]))
    xs = torch.tensor([[[1.0, 1.0]], [[1.0, 1.0]]])  # (E=2, B=1, 2)
    ys = torch.tensor([[[10.0]], [[-10.0]]])
    opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.5)
    _, kept = andmask.and_mask_step(model, F.mse_loss, xs, ys, opt, tau=1.0)
    assert kept == {"0.weight": 0.0}
    torch.testing.assert_close(model[0].weight, torch.tensor([[0.5, -0.25]]) * (1 - 0.1 * 0.5))


def test_fit_and_mask_history_and_learning():
    torch.manual_seed(0)
    x, y = datasets.linear_toy()
    model = nn.Sequential(nn.Linear(5, 1, bias=False))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hist = andmask.fit_and_mask(
        model, F.mse_loss, x, y, opt, steps=50, tau=0.0, batch_per_env=1, eval_every=25
    )
    assert hist.step.tolist() == [25, 50]
    assert {"loss", "kept", "kept_0.weight"} <= set(hist.columns)
    assert hist.loss.iloc[-1] < hist.loss.iloc[0]
    with pytest.raises(ValueError, match="batch_per_env"):
        andmask.fit_and_mask(model, F.mse_loss, x, y, opt, steps=1, tau=0.0, batch_per_env=2)
    with pytest.raises(ValueError, match="steps"):
        andmask.fit_and_mask(model, F.mse_loss, x, y, opt, steps=0, tau=0.0, batch_per_env=1)


# ---------------------------------------------------------------------------------------------
# The null twin of the mask: as many components at random positions


@pytest.mark.parametrize("tau", [0.3, 5 / 7, 1.0])
def test_agreement_mask_is_the_and_mask_of_the_sign_counts(tau):
    g = random_grads()
    counts = g.sign().sum(0)
    assert torch.equal(andmask.agreement_mask(counts, g.shape[0], tau), andmask.and_mask(g, tau))


def test_random_mask_keeps_the_count_and_moves_the_positions():
    mask = (torch.rand(40, 30, generator=torch.Generator().manual_seed(0)) < 0.1).float()
    twin = andmask.random_mask_like(mask, torch.Generator().manual_seed(1))
    assert twin.shape == mask.shape and twin.dtype == mask.dtype
    assert twin.sum() == mask.sum()  # the same kept fraction
    assert set(twin.unique().tolist()) <= {0.0, 1.0}
    overlap = (twin * mask).sum() / mask.sum()
    assert overlap < 0.5, "the positions should be (nearly) independent of the mask's"
    with pytest.raises(TypeError, match="generator"):
        andmask.random_mask_like(mask, 0)


@pytest.mark.parametrize("make", [lambda: models.mlp(6, (8, 7), 3), Tower])
def test_random_method_step_keeps_the_and_masks_fraction_elsewhere(make):
    torch.manual_seed(4)
    model = make()
    xs, ys = stacked_batch(n_envs=5, batch=3)
    grads = loop_reference(model, xs, ys)
    gen = torch.Generator().manual_seed(0)
    update, _, kept = _update_with_sgd(
        model, xs, ys, tau=0.6, method="random", rescale=True, generator=gen
    )
    for name, g in grads.items():
        mask = andmask.and_mask(g, 0.6)
        assert kept[name] == pytest.approx(mask.mean().item(), abs=1e-6)
        moved = update[name] != 0
        assert moved.sum() <= mask.sum()  # never more components than the AND-mask keeps
        # where it moved, it moved by the rescaled mean gradient
        want = g.mean(0) / mask.mean().clamp_min(1e-30)
        torch.testing.assert_close(update[name][moved], want[moved], rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="generator"):
        andmask.and_mask_step(model, F.cross_entropy, xs, ys, torch.optim.SGD(
            model.parameters(), lr=1.0), tau=0.6, method="random")  # fmt: skip


def test_random_mask_with_a_fixed_fraction():
    like = torch.zeros(10, 20)
    mask = andmask.random_mask(like, 0.25, torch.Generator().manual_seed(0))
    assert mask.sum() == 50 and mask.shape == like.shape
    assert andmask.random_mask(like, 0.0, torch.Generator()).sum() == 0
    with pytest.raises(ValueError, match="fraction"):
        andmask.random_mask(like, 1.5, torch.Generator())
    g = random_grads()
    update = andmask.masked_gradient(
        g, 1.0, method="random", keep=0.5, generator=torch.Generator().manual_seed(0)
    )
    moved = update != 0
    assert moved.sum() <= round(0.5 * moved.numel())
    torch.testing.assert_close(update[moved], g.mean(0)[moved])


def test_random_method_step_takes_fixed_fractions_per_tensor():
    torch.manual_seed(5)
    model = models.mlp(6, (8, 7), 3)
    xs, ys = stacked_batch(n_envs=5, batch=3)
    keep = {name: 0.1 * (i + 1) for i, (name, _) in enumerate(model.named_parameters())}
    gen = torch.Generator().manual_seed(0)
    _, _, kept = _update_with_sgd(model, xs, ys, tau=1.0, method="random", keep=keep, generator=gen)
    for name, p in model.named_parameters():
        assert kept[name] == pytest.approx(round(keep[name] * p.numel()) / p.numel())
    with pytest.raises(ValueError, match="keep"):
        _update_with_sgd(model, xs, ys, tau=1.0, method="random", keep={"x": 0.1}, generator=gen)


def test_kept_fractions_average_each_parameter():
    hist = pd.DataFrame(
        {"step": [1, 2], "kept_a": [0.2, 0.4], "kept_b": [1.0, 0.0], "loss": [1, 1]}
    )
    assert andmask.kept_fractions(hist) == pytest.approx({"a": 0.3, "b": 0.5})
    with pytest.raises(ValueError, match="kept_"):
        andmask.kept_fractions(hist[["step", "loss"]])


def test_fit_spirals_recipe_logs_both_accuracies_and_tau_zero_is_erm():
    data = datasets.spirals(n_envs=4, n_per_env=16, shortcut_dims=3, n_test=20, seed=0)
    model, hist = andmask.fit_spirals(
        data, 0.0, seed=0, steps=4, batch_per_env=8, hidden=(8,), eval_every=2
    )
    assert hist.step.tolist() == [2, 4]
    assert {"acc_train", "acc_test", "kept"} <= set(hist.columns)
    assert (hist.kept == 1.0).all()
    again, _ = andmask.fit_spirals(
        data, 0.0, seed=0, steps=4, batch_per_env=8, hidden=(8,), eval_every=2
    )
    for p, q in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(p, q)  # seeded: the same run twice
    # one step from the same init and batch: the twin keeps exactly the AND-mask's fractions
    first = dict(seed=0, steps=1, batch_per_env=8, hidden=(8,), eval_every=1)
    _, twin = andmask.fit_spirals(data, 0.75, method="random", **first)
    _, anded = andmask.fit_spirals(data, 0.75, **first)
    kept = [c for c in anded.columns if c.startswith("kept")]
    assert anded.kept.iloc[0] < 1.0
    pd.testing.assert_frame_equal(twin[kept], anded[kept])


# ---------------------------------------------------------------------------------------------
# Temporal AND-mask Adam


def _grad_sequence(n_steps=12, shape=(3, 4), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=gen) + 0.5 for _ in range(n_steps)]


def test_temporal_adam_with_tau_zero_is_torch_adam():
    p0 = torch.randn(3, 4)
    a, b = p0.clone().requires_grad_(), p0.clone().requires_grad_()
    ours = andmask.TemporalAndMaskAdam([a], lr=0.01, betas=(0.8, 0.99), tau=0.0)
    ref = torch.optim.Adam([b], lr=0.01, betas=(0.8, 0.99))
    for g in _grad_sequence():
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_temporal_adam_matches_algorithm_1_by_hand():
    lr, b1, b2, b3, tau, eps, wd = 0.05, 0.9, 0.99, 0.7, 0.5, 1e-8, 0.1
    p = torch.randn(3, 4, dtype=torch.float64)
    theta = p.clone().requires_grad_()
    opt = andmask.TemporalAndMaskAdam(
        [theta], lr=lr, betas=(b1, b2), beta3=b3, tau=tau, eps=eps, weight_decay=wd
    )
    ref = p.tolist()
    m = [[0.0] * 4 for _ in range(3)]
    v = [[0.0] * 4 for _ in range(3)]
    s = [[0.0] * 4 for _ in range(3)]
    for t, g in enumerate(_grad_sequence(seed=1), start=1):
        g = g.double()
        theta.grad = g.clone()
        opt.step()
        for i in range(3):
            for j in range(4):
                gij = g[i, j].item()
                m[i][j] = b1 * m[i][j] + (1 - b1) * gij
                v[i][j] = b2 * v[i][j] + (1 - b2) * gij * gij
                s[i][j] = b3 * s[i][j] + (1 - b3) * _sgn(gij)
                keep = 1.0 if abs(s[i][j]) >= tau else 0.0
                m_hat, v_hat = m[i][j] / (1 - b1**t), v[i][j] / (1 - b2**t)
                ref[i][j] -= lr * keep * m_hat / (math.sqrt(v_hat) + eps)
                ref[i][j] *= 1 - lr * wd
    torch.testing.assert_close(theta.detach(), torch.tensor(ref, dtype=torch.float64))


def test_temporal_adam_does_not_move_masked_weights():
    theta = torch.ones(5, requires_grad=True)
    opt = andmask.TemporalAndMaskAdam([theta], lr=0.1, tau=1.0)  # |a| < 1 always: all masked
    for g in _grad_sequence(shape=(5,)):
        theta.grad = g
        opt.step()
    assert torch.equal(theta.detach(), torch.ones(5))


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("tau", [-0.1, 1.5, float("nan"), "0.5", True, None])
def test_bad_tau_is_rejected(tau):
    g = random_grads()
    for fn in (
        lambda: andmask.and_mask(g, tau),
        lambda: andmask.masked_gradient(g, tau),
        lambda: andmask.sand_mask(g, tau, 1.0),
    ):
        with pytest.raises(ValueError, match="tau"):
            fn()
    with pytest.raises(ValueError, match="tau"):
        andmask.TemporalAndMaskAdam([torch.zeros(1, requires_grad=True)], tau=tau)


def test_bad_inputs_name_the_argument():
    model = models.mlp(6, (4,), 3)
    xs, ys = stacked_batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="stacked alike"):
        andmask.env_gradients(model, F.cross_entropy, xs, ys[:, :3])
    with pytest.raises(ValueError, match="stacked alike"):
        andmask.and_mask_step(model, F.cross_entropy, xs, ys[:4], opt, tau=0.5)
    with pytest.raises(ValueError, match="xs must be env-stacked"):
        andmask.env_gradients(model, F.cross_entropy, xs[0, 0, 0], ys)
    with pytest.raises(TypeError, match="ys must be a Tensor"):
        andmask.env_gradients(model, F.cross_entropy, xs, ys.tolist())
    with pytest.raises(ValueError, match="method"):
        andmask.masked_gradient(random_grads(), 0.5, method="or")
    with pytest.raises(ValueError, match="method"):
        andmask.and_mask_step(model, F.cross_entropy, xs, ys, opt, tau=0.5, method="xor")
    with pytest.raises(ValueError, match="k must be"):
        andmask.sand_mask(random_grads(), 0.5, 0.0)
    with pytest.raises(TypeError, match="env_grads"):
        andmask.and_mask([[1.0]], 0.5)
    with pytest.raises(ValueError, match="env_grads"):
        andmask.and_mask(torch.tensor(1.0), 0.5)


# ---------------------------------------------------------------------------------------------
# Data


def test_linear_toy_is_the_papers_design():
    x, y = datasets.linear_toy()
    assert x.shape == (4, 1, 5) and y.shape == (4, 1, 1)
    expected = 3 * torch.cat([torch.eye(4), torch.full((4, 1), 0.1)], dim=1)
    torch.testing.assert_close(x[:, 0], expected)
    assert torch.equal(y, torch.ones(4, 1, 1))
    noisy, _ = datasets.linear_toy(noise=1e-3, seed=1)
    assert 0 < (noisy - x).abs().max() <= 3e-3


def test_spirals_shortcut_is_one_vector_per_environment():
    d = datasets.spirals(n_envs=3, n_per_env=40, shortcut_dims=5, n_test=50, seed=0)
    assert d.x_train.shape == (3, 40, 7) and d.y_train.shape == (3, 40)
    assert d.x_test.shape == (50, 7) and d.y_test.shape == (50,)
    assert (d.y_train.sum(dim=1) == 20).all()  # balanced in every environment
    for e in range(3):
        signed = d.x_train[e, :, 2:] * (2 * d.y_train[e, :, None] - 1)  # undo the +-s_e
        torch.testing.assert_close(signed, signed[:1].expand_as(signed))
    signed_test = d.x_test[:, 2:] * (2 * d.y_test[:, None] - 1)
    assert signed_test.std(dim=0).min() > 0.5  # a fresh shortcut for every test example
    mech = d.x_train[..., :2].reshape(-1, 2)
    torch.testing.assert_close(mech.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(mech.std(0, unbiased=False), torch.ones(2), atol=1e-5, rtol=0)
    again = datasets.spirals(n_envs=3, n_per_env=40, shortcut_dims=5, n_test=50, seed=0)
    assert torch.equal(again.x_train, d.x_train)
    with pytest.raises(ValueError, match="n_envs"):
        datasets.spirals(n_envs=0)


def test_random_label_digits_keep_class_counts():
    d = datasets.random_label_digits(seed=0)
    assert d.x_envs.shape[1:] == (1, 8, 8) and d.y_random.shape == d.y_true.shape
    assert torch.equal(d.y_random.flatten().bincount(), d.y_true.flatten().bincount())
    assert (d.y_random == d.y_true).float().mean() < 0.2  # the image-label link is gone
    with pytest.raises(ValueError, match="fraction"):
        datasets.random_label_digits(fraction=0.0)


# ---------------------------------------------------------------------------------------------
# Exercise checkers: pass on the reference, fail on plausible wrong answers


def test_check_and_mask_accepts_reference_and_rejects_mistakes(capsys):
    from hvnotes import checks

    assert checks.check_and_mask(andmask.and_mask)
    assert capsys.readouterr().out.startswith("✓ and_mask: 7/7 checks passed")

    def naive_count(g, tau):  # 7 >= 0.28 * 25 is False in floating point
        return (g.sign().sum(0).abs() >= tau * g.shape[0]).float()

    def no_abs(g, tau):  # forgets that agreeing on "down" is agreement too
        return (g.sign().mean(0) >= tau).float()

    def zero_counts_for(g, tau):  # treats sign(0) as +1
        return (torch.where(g >= 0, 1.0, -1.0).mean(0).abs() >= tau).float()

    def strict(g, tau):  # > instead of >=
        return (g.sign().sum(0).abs() > tau * g.shape[0]).float()

    for wrong in (naive_count, no_abs, zero_counts_for, strict):
        assert not checks.check_and_mask(wrong), wrong.__name__
    assert "✗ and_mask" in capsys.readouterr().out


def test_check_keep_probability_accepts_reference_and_rejects_mistakes(capsys):
    from hvnotes import checks

    assert checks.check_keep_probability(andmask.keep_probability)
    assert capsys.readouterr().out.startswith("✓ keep_probability: 7/7 checks passed")

    def one_sided(n, tau):  # forgets the all-negative side
        need = math.ceil(n * (1 + tau) / 2 - 1e-9)
        return sum(math.comb(n, j) for j in range(need, n + 1)) / 2**n

    assert not checks.check_keep_probability(one_sided)
    assert not checks.check_keep_probability(lambda n, tau: 0.5**n)


def test_pass_probability_matches_a_simulation_of_noisy_batch_signs():
    # environments' batch means of B examples N(s, 1): right sign with probability Phi(sqrt(B) s)
    gen = torch.Generator().manual_seed(0)
    for n_envs, tau, batch, snr in [(16, 1.0, 64, 0.2), (32, 0.8, 128, 0.1), (24, 0.75, 32, 0.1)]:
        means = snr + torch.randn(4_000, n_envs, batch, generator=gen).mean(-1)
        count = means.sign().sum(-1).abs()
        simulated = (count >= andmask.required_agreement(tau, n_envs)).double().mean().item()
        p = 0.5 * (1 + math.erf(math.sqrt(batch) * snr / math.sqrt(2)))
        assert andmask.pass_probability(n_envs, tau, p) == pytest.approx(simulated, abs=0.03)
    for n_envs, tau in [(4, 1.0), (16, 0.5), (80, 0.2)]:
        assert andmask.pass_probability(n_envs, tau, 0.5) == pytest.approx(
            andmask.keep_probability(n_envs, tau)
        )
    assert andmask.pass_probability(32, 1.0, 1.0) == 1.0
    assert andmask.pass_probability(32, 1.0, 0.9) == pytest.approx(0.9**32 + 0.1**32)
    with pytest.raises(ValueError, match="p_agree"):
        andmask.pass_probability(4, 0.5, 1.5)


def test_check_tau_choice_accepts_the_lowest_safe_threshold_only(capsys):
    from hvnotes import checks

    assert checks.reference_tau_choice(24) == 0.75
    assert checks.reference_tau_choice(16) == 0.875  # the window notebook 02 finds at 16
    assert checks.check_tau_choice(lambda n: 0.75)
    assert checks.check_tau_choice(lambda n: 17 / 24)  # the same rule when no sign is zero
    assert not checks.check_tau_choice(lambda n: 0.6)  # random signs pass 1.5e-3 of the time
    assert not checks.check_tau_choice(lambda n: 1.0)  # safe, but needlessly strict
    assert not checks.check_tau_choice(lambda n: "0.75")
    out = capsys.readouterr().out
    assert out.startswith("✓ tau for 24 environments: 3/3 checks passed")
