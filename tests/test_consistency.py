"""Tests of hvnotes.consistency against independent computations: a slow flood-fill reference of
the score, generalised eigenvalues (scipy) and sampled ellipses for the closed form, scipy's
matrix square root for the geometric mean, and the closed-form GD iteration on a quadratic."""

from collections import deque

import numpy as np
import pytest
import scipy.linalg
import torch

from hvnotes import checks
from hvnotes import consistency as c


def random_spd(rng, n=2, low=0.05, high=2.0):
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (q * rng.uniform(low, high, size=n)) @ q.T


def grid_for(hessians, eps, n=601, margin=1.15):
    """A square grid that holds every environment's eps-ellipse theta^T H theta <= 2 eps."""
    half = max(np.sqrt(2 * eps * np.diag(np.linalg.inv(h))).max() for h in hessians) * margin
    return [np.linspace(-half, half, n)] * 2


def slow_score(losses, star, eps):
    """Reference: breadth-first flood fill with 8-neighbours, pure Python."""
    n1, n2 = losses.shape[1:]
    best = 0.0
    for e in range(len(losses)):
        ref = losses[e][star]
        seen, todo = {star}, deque([star])
        while todo:
            i, j = todo.popleft()
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    nb = (i + di, j + dj)
                    if 0 <= nb[0] < n1 and 0 <= nb[1] < n2 and nb not in seen:
                        if abs(losses[e][nb] - ref) <= eps:
                            seen.add(nb)
                            todo.append(nb)
        for e2 in range(len(losses)):
            if e2 != e:
                best = max(best, max(abs(losses[e2][p] - ref) for p in seen))
    return best


# --- the score on a grid ------------------------------------------------------------------


def test_paper_example_grid_matches_closed_form():
    hessians = np.array([np.diag([0.05, 1.0]), np.diag([1.0, 0.05])])
    assert c.quadratic_inconsistency(hessians, 0.01) == pytest.approx(0.2)
    axes = grid_for(hessians, 0.01)
    losses = c.evaluate_on_grid(lambda t: c.quadratic_losses(t, hessians), axes)
    star = c.nearest_index(axes, [0.0, 0.0])
    assert c.inconsistency_score(losses, star, 0.01) == pytest.approx(0.2, rel=0.02)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_grid_matches_closed_form_on_random_spd_pairs(seed):
    rng = np.random.default_rng(seed)
    hessians = np.array([random_spd(rng), random_spd(rng)])
    eps = 0.02
    axes = grid_for(hessians, eps)
    losses = c.evaluate_on_grid(lambda t: c.quadratic_losses(t, hessians), axes)
    grid = c.inconsistency_score(losses, c.nearest_index(axes, [0.0, 0.0]), eps)
    assert grid == pytest.approx(c.quadratic_inconsistency(hessians, eps), rel=0.03)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_is_the_generalised_eigenvalue(seed):
    rng = np.random.default_rng(10 + seed)
    hessians = np.array([random_spd(rng, n=3) for _ in range(3)])
    expected = max(
        scipy.linalg.eigh(hessians[e2], hessians[e], eigvals_only=True).max()
        for e in range(3)
        for e2 in range(3)
        if e != e2
    )
    assert c.quadratic_inconsistency(hessians, 0.1) == pytest.approx(0.1 * expected, rel=1e-9)


def test_closed_form_by_sampling_the_ellipse_non_diagonal():
    rng = np.random.default_rng(7)
    h_a, h_b = random_spd(rng), random_spd(rng)
    eps = 0.3
    # boundary of {theta^T H_a theta = 2 eps}: theta = sqrt(2 eps) H_a^{-1/2} u, |u| = 1
    angles = np.linspace(0, 2 * np.pi, 20001)
    u = np.stack([np.cos(angles), np.sin(angles)])
    theta = np.sqrt(2 * eps) * np.real(scipy.linalg.sqrtm(np.linalg.inv(h_a))) @ u
    sampled_ab = (0.5 * np.einsum("in,ij,jn->n", theta, h_b, theta)).max()
    theta = np.sqrt(2 * eps) * np.real(scipy.linalg.sqrtm(np.linalg.inv(h_b))) @ u
    sampled_ba = (0.5 * np.einsum("in,ij,jn->n", theta, h_a, theta)).max()
    closed = c.quadratic_inconsistency(np.array([h_a, h_b]), eps)
    assert closed == pytest.approx(max(sampled_ab, sampled_ba), rel=1e-6)


def test_identical_environments_score_eps():
    h = np.array([[1.0, 0.3], [0.3, 0.5]])
    assert c.quadratic_inconsistency(np.array([h, h]), 0.05) == pytest.approx(0.05)
    axes = grid_for([h], 0.05, n=401)
    losses = c.evaluate_on_grid(lambda t: c.quadratic_losses(t, np.array([h, h])), axes)
    score = c.inconsistency_score(losses, c.nearest_index(axes, [0, 0]), 0.05)
    assert score == pytest.approx(0.05, rel=1e-3) and score <= 0.05


def test_singular_direction_gives_inf_and_shared_flat_direction_does_not():
    flat_a = np.array([np.diag([0.0, 1.0]), np.eye(2)])
    assert c.quadratic_inconsistency(flat_a, 0.01) == float("inf")
    assert c.quadratic_inconsistency(flat_a[::-1], 0.01) == float("inf")
    both_flat = np.array([np.diag([0.0, 1.0]), np.diag([0.0, 3.0])])
    assert c.quadratic_inconsistency(both_flat, 0.01) == pytest.approx(0.03)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_score_matches_slow_flood_fill(seed):
    rng = np.random.default_rng(seed)
    # rough random landscapes: the eps-sublevel sets have many components
    losses = np.cumsum(np.cumsum(rng.normal(size=(3, 25, 30)), axis=1), axis=2) / 10
    star = (int(rng.integers(25)), int(rng.integers(30)))
    for eps in (0.05, 0.3, 1.0):
        assert c.inconsistency_score(losses, star, eps) == pytest.approx(
            slow_score(losses, star, eps)
        )


def test_only_the_component_of_theta_star_counts():
    x = np.linspace(-1, 6, 701)
    env_a = np.minimum(x**2, (x - 5) ** 2)  # two zeros, separated by a hill
    env_b = np.where(x > 2.5, 10.0, x**2)  # B hates the far zero
    losses = np.stack([env_a, env_b])[:, :, None].repeat(3, axis=2)
    star = (int(np.abs(x).argmin()), 1)
    assert 0.09 < c.inconsistency_score(losses, star, 0.1) <= 0.1  # not 10: far zero ignored


def test_unbounded_component_is_clipped_to_the_grid():
    def small(t):
        return c.crossing_valleys(t)

    scores = []
    for half in (4.0, 6.0):
        axes = [np.linspace(-2, half, 201)] * 2
        losses = c.evaluate_on_grid(small, axes)
        scores.append(c.inconsistency_score(losses, c.nearest_index(axes, [3, 3]), 0.02))
    assert scores[1] > scores[0] > 0.5  # the valley runs off the grid: a bigger grid sees more


def test_invalid_arguments_name_the_argument():
    losses = np.zeros((2, 5, 5))
    with pytest.raises(ValueError, match="env_losses"):
        c.inconsistency_score(np.zeros((1, 5, 5)), (0, 0), 0.1)
    with pytest.raises(ValueError, match="eps"):
        c.inconsistency_score(losses, (0, 0), 0.0)
    with pytest.raises(ValueError, match="eps"):
        c.inconsistency_score(losses, (0, 0), -1)
    with pytest.raises(ValueError, match="star"):
        c.inconsistency_score(losses, (5, 0), 0.1)
    with pytest.raises(ValueError, match="star"):
        c.inconsistency_score(losses, (0,), 0.1)
    with pytest.raises(ValueError, match="env_losses"):
        c.inconsistency_score(np.full((2, 3, 3), np.nan), (0, 0), 0.1)
    with pytest.raises(ValueError, match="hessians"):
        c.quadratic_inconsistency(np.eye(2)[None], 0.1)
    with pytest.raises(ValueError, match="hessians"):
        c.quadratic_inconsistency(np.array([[[1.0, 2.0], [0.0, 1.0]]] * 2), 0.1)
    with pytest.raises(ValueError, match="hessians"):
        c.quadratic_inconsistency(np.array([-np.eye(2), np.eye(2)]), 0.1)
    with pytest.raises(ValueError, match="eps"):
        c.quadratic_inconsistency(np.array([np.eye(2)] * 2), float("nan"))


# --- Hessian means ------------------------------------------------------------------------


def test_geometric_mean_of_two_matches_the_closed_form():
    rng = np.random.default_rng(3)
    a, b = random_spd(rng, n=3), random_spd(rng, n=3)
    ra = np.real(scipy.linalg.sqrtm(a))
    ira = np.linalg.inv(ra)
    expected = ra @ np.real(scipy.linalg.sqrtm(ira @ b @ ira)) @ ra
    np.testing.assert_allclose(c.geometric_mean(np.array([a, b])), expected, atol=1e-9)
    np.testing.assert_allclose(c.geometric_mean(np.array([b, a])), expected, atol=1e-9)


def test_geometric_mean_of_diagonals_is_elementwise_and_volume_ratio():
    hessians = np.array([np.diag([0.05, 1.0]), np.diag([1.0, 0.05]), np.diag([0.5, 0.5])])
    np.testing.assert_allclose(
        c.geometric_mean(hessians),
        np.diag(np.prod([[0.05, 1], [1, 0.05], [0.5, 0.5]], 0) ** (1 / 3)),
    )
    paper = hessians[:2]
    assert c.volume_ratio(paper) == pytest.approx(0.525**2 / 0.05)  # 5.51, the paper's "5x"
    assert c.volume_ratio(np.array([paper[0], paper[0]])) == pytest.approx(1.0)


# --- optimisers ---------------------------------------------------------------------------


def test_gradient_descent_on_a_quadratic_matches_the_iteration():
    hessians = np.array([np.diag([1.0, 0.2]), np.diag([0.5, 0.6])])
    theta0 = torch.tensor([[1.0, -2.0], [0.5, 0.5]], dtype=torch.float64)
    path = c.gradient_descent(lambda t: c.quadratic_losses(t, hessians), theta0, 7, 0.3, None, 0.1)
    step = np.eye(2) - 0.3 * (hessians.mean(0) + 0.1 * np.eye(2))
    expected = theta0.numpy() @ np.linalg.matrix_power(step, 7).T
    assert path.shape == (8, 2, 2)
    np.testing.assert_allclose(path[-1].numpy(), expected, rtol=1e-12)


def test_and_mask_with_tau_zero_is_plain_gd_and_tau_one_stops_disagreement():
    theta0 = torch.rand(5, 2, dtype=torch.float64) * 4
    plain = c.gradient_descent(c.crossing_valleys, theta0, 20, 0.3)
    masked = c.gradient_descent(c.crossing_valleys, theta0, 20, 0.3, tau=0.0)
    assert torch.equal(plain, masked)

    # A pulls coordinate 0 up, B pulls it down; both pull coordinate 1 down
    def opposed(t):
        return torch.stack([t[:, 0] + t[:, 1], -t[:, 0] + t[:, 1]])

    path = c.gradient_descent(opposed, torch.zeros(1, 2, dtype=torch.float64), 3, 0.1, tau=1.0)
    np.testing.assert_allclose(path[-1].numpy(), [[0.0, -0.3]])


def test_crossing_valleys_has_exactly_two_pooled_zeros():
    axes = [np.linspace(-2, 5, 141)] * 2  # step 0.05: C = (0, 0) and P = (3, 3) are grid points
    losses = c.evaluate_on_grid(c.crossing_valleys, axes)
    pooled = losses.mean(0)
    zeros = np.argwhere(pooled < 1e-12)
    np.testing.assert_allclose(
        [[axes[0][i], axes[1][j]] for i, j in zeros], [[0, 0], [3, 3]], atol=1e-9
    )
    line = c.crossing_valleys(torch.tensor([[3.0, y] for y in (-2.0, 0.5, 4.0)]))
    assert line[0].abs().max() < 1e-12 and line[1].min() > 0.5  # A's valley, B's hill


def test_ilc_and_landing_sites():
    axes = [np.linspace(-2, 5, 176)] * 2
    losses = c.evaluate_on_grid(c.crossing_valleys, axes)
    ends = np.array([[0.0, 0.0], [3.0, 3.0], [0.01, 0.0]])
    value, scores = c.ilc(losses, axes, ends, 0.02)
    assert scores[0] == scores[2] < 0.05 < 0.5 < scores[1]
    assert value == pytest.approx(-scores.mean())
    sites = c.landing_sites(ends, [[0, 0], [3, 3]], 0.1)
    assert sites.tolist() == [0, 1, 0]
    assert c.landing_sites([[1.5, 1.5]], [[0, 0], [3, 3]], 0.1).tolist() == [-1]


def test_patchwork_theta6_changes_only_environment_b():
    theta = torch.tensor(c.PATCHWORK_THETA, dtype=torch.float64)
    varied = theta.clone()
    varied[5] = -0.5
    base, moved = c.patchwork_losses(theta), c.patchwork_losses(varied)
    assert base.max() < 0.01
    assert abs(moved[0] - base[0]) < 1e-6 and moved[1] > 100 * base[1]


# --- the exercise checker -----------------------------------------------------------------


def test_checker_passes_reference_and_fails_wrong_answers(capsys):
    assert checks.check_quadratic_inconsistency(c.quadratic_inconsistency)
    assert capsys.readouterr().out.startswith("✓")

    def diagonal_only(hessians, eps):  # right for the paper's example, wrong in general
        h = np.asarray(hessians)
        d = np.diagonal(h, axis1=1, axis2=2)
        return eps * max((d[i] / d[j]).max() for i in range(len(h)) for j in range(len(h)))

    def smallest(hessians, eps):  # lambda_min instead of lambda_max
        h = np.asarray(hessians)
        return eps * min(np.linalg.eigvals(np.linalg.solve(h[0], h[1])).real)

    for wrong in (diagonal_only, smallest):
        assert not checks.check_quadratic_inconsistency(wrong)
        assert capsys.readouterr().out.startswith("✗")


# --- figures (smoke tests: they draw, label their axes and carry a colour bar) ---------------


def test_figures_draw_with_labels_and_colour_bars():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = [np.linspace(-2, 5, 71)] * 2
    losses = c.evaluate_on_grid(c.crossing_valleys, axes)
    stars = [c.nearest_index(axes, [0, 0]), c.nearest_index(axes, [3, 3])]
    for fig in (
        c.plot_landscapes(losses, axes, minima=[[0, 0], [3, 3]]),
        c.plot_components(losses, axes, stars, 0.05),
    ):
        panels, bars = fig.axes[:-1], fig.axes[-1]
        assert all(ax.get_xlabel() for ax in panels) and panels[0].get_ylabel()
        assert bars.get_ylabel()  # the colour bar's label
        plt.close(fig)
    with pytest.raises(ValueError, match="env_losses"):
        c.plot_components(np.zeros((3, 5, 5)), [np.arange(5)] * 2, [(0, 0)], 0.1)
    fig, ax = plt.subplots()
    path = c.gradient_descent(c.crossing_valleys, torch.tensor([[1.0, 1.0], [3.2, 3.1]]), 3, 0.3)
    c.plot_paths(ax, path, c.landing_sites(path[-1], [[0, 0], [3, 3]], 0.5))
    assert len(ax.lines) == 6
    plt.close(fig)


def test_bound_constant_matches_matrix_closed_forms_and_never_reaches_4():
    rng = np.random.default_rng(0)
    a, b = np.exp(rng.uniform(-4, 4, (2, 2000, 2)))
    got = c.bound_constant(a, b)
    for i in range(0, 2000, 400):  # matrix by matrix: eigenvalues and the Karcher mean
        H = np.array([np.diag(a[i]), np.diag(b[i])])
        want = c.quadratic_inconsistency(H, 1.0) / c.volume_ratio(H) ** 2
        assert np.isclose(got[i], want, rtol=1e-6)
    assert got.max() < 4 and got.max() > 2  # the paper's constant 2 fails, 4 holds
    # one coordinate far apart, the other equal: 4 / (1 + e^(-2t))^2, the supremum's approach
    t = 3.0
    close = c.bound_constant([[np.exp(2 * t), 1.0]], [[1.0, 1.0]])[0]
    assert np.isclose(close, 4 / (1 + np.exp(-2 * t)) ** 2)
    # the counterexample: I^eps / eps = 20 while 2 ratio^2 = 11.025, so the constant is 20 / 5.5125
    assert np.isclose(c.bound_constant([[0.05, 1.0]], [[1.0, 1.0]])[0], 20 / 5.5125)
    with pytest.raises(ValueError, match="a and b"):
        c.bound_constant([[1.0, -1.0]], [[1.0, 1.0]])


def test_check_bound_constant_rejects_the_papers_constant(capsys):
    assert checks.check_bound_constant(c.bound_constant)
    assert not checks.check_bound_constant(lambda a, b: c.bound_constant(a, b) * 2)
    assert "✗ bound_constant" in capsys.readouterr().out


# --- the score's control, the mask's twins, moved landscapes, the patchwork's splits ----------


def test_score_without_the_component_counts_a_distant_valley():
    axes = [np.linspace(-2, 5, 176)] * 2
    losses = c.evaluate_on_grid(c.crossing_valleys, axes)
    star = c.nearest_index(axes, [0, 0])
    assert c.inconsistency_score(losses, star, 0.02) < 0.05
    # A is zero on its whole valley theta_1 = 3, where B's loss is large: the loose score sees it
    loose = c.inconsistency_score(losses, star, 0.02, connected=False)
    region = np.abs(losses[0] - losses[0][star]) <= 0.02
    assert loose == pytest.approx(max(np.abs(losses[1][region]).max(), 0.0)) and loose > 0.5
    # on a landscape whose sublevel sets are connected, both agree
    h = np.array([np.diag([0.05, 1.0]), np.diag([1.0, 0.05])])
    q_axes = grid_for(h, 0.01, n=301)
    q = c.evaluate_on_grid(lambda t: c.quadratic_losses(t, h), q_axes)
    q_star = c.nearest_index(q_axes, [0, 0])
    assert c.inconsistency_score(q, q_star, 0.01, connected=False) == c.inconsistency_score(
        q, q_star, 0.01
    )


def test_shuffled_mask_keeps_as_many_entries_in_other_places():
    mask = (torch.rand(50, 2, generator=torch.Generator().manual_seed(0)) < 0.3).double()
    shuffled = c.shuffled_mask(mask, torch.Generator().manual_seed(1))
    assert shuffled.shape == mask.shape and shuffled.dtype == mask.dtype
    assert shuffled.sum() == mask.sum() and not torch.equal(shuffled, mask)
    again = c.shuffled_mask(mask, torch.Generator().manual_seed(1))
    assert torch.equal(shuffled, again)  # seeded: the same draw
    with pytest.raises(TypeError, match="mask"):
        c.shuffled_mask(np.ones(3))


def test_masks_of_gradient_descent():
    theta0 = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    # keeps nothing: only the decay acts, theta_k = (1 - lr wd)^k theta0
    path = c.gradient_descent(
        c.crossing_valleys, theta0, 5, 0.3, tau=1.0, weight_decay=0.1, mask="nothing"
    )
    np.testing.assert_allclose(path[-1].numpy(), (1 - 0.03) ** 5 * theta0.numpy(), rtol=1e-12)

    # A pulls coordinate 0 up, B pulls it down; both pull coordinate 1 down: the AND-mask keeps
    # exactly coordinate 1 of each point, the random mask keeps one coordinate per point on average
    def opposed(t):
        return torch.stack([t[:, 0] + t[:, 1], -t[:, 0] + t[:, 1]])

    many = torch.zeros(400, 2, dtype=torch.float64)
    masked = c.gradient_descent(opposed, many, 1, 0.1, tau=1.0)
    assert (masked[-1][:, 0] == 0).all() and (masked[-1][:, 1] == -0.1).all()
    gen = torch.Generator().manual_seed(0)
    rand = c.gradient_descent(opposed, many, 1, 0.1, tau=1.0, mask="random", generator=gen)
    moved_1 = rand[-1][:, 1] != 0  # coordinate 0 has mean gradient 0 wherever it is kept
    assert 150 < int(moved_1.sum()) < 250  # about half of the 400 kept entries land there
    with pytest.raises(ValueError, match="mask"):
        c.gradient_descent(opposed, many, 1, 0.1, tau=1.0, mask="xor")


def test_moved_landscape_is_the_same_landscape_shifted():
    theta = torch.tensor([[0.3, -1.2], [3.0, 3.0]], dtype=torch.float64)
    offset = torch.tensor([-2.0, 1.5], dtype=torch.float64)
    np.testing.assert_allclose(
        c.moved(c.crossing_valleys, offset)(theta + offset).numpy(),
        c.crossing_valleys(theta).numpy(),
        atol=1e-14,
    )
    per_point = torch.stack([offset, -offset])  # (N, d): each point its own offset
    np.testing.assert_allclose(
        c.moved(c.crossing_valleys, per_point)(theta + per_point).numpy(),
        c.crossing_valleys(theta).numpy(),
        atol=1e-14,
    )


def test_landing_shares_sum_to_one():
    shares = c.landing_shares([[0, 0], [3, 3.1], [1, 1], [0.1, 0]], [[0, 0], [3, 3]], 0.25, "CP")
    assert shares == {"in C": 0.5, "in P": 0.25, "elsewhere": 0.25}
    with pytest.raises(ValueError, match="names"):
        c.landing_shares([[0, 0]], [[0, 0], [3, 3]], 0.25, ["C"])


def test_patchwork_splits_hold_the_same_inputs():
    theta = torch.tensor(c.PATCHWORK_THETA, dtype=torch.float64)
    halves = c.patchwork_losses(theta, split="halves")
    interleaved = c.patchwork_losses(theta, split="interleaved")
    assert halves.mean() == pytest.approx(float(interleaved.mean()), rel=1e-12)  # same pooled loss
    varied = theta.clone()
    varied[5] = -0.5  # neuron 2 acts on B's half only
    assert abs(c.patchwork_losses(varied)[0] - halves[0]) < 1e-6
    both = c.patchwork_losses(varied, split="interleaved")
    assert both.min() > 100 * interleaved.max()  # interleaved, both environments see it
    with pytest.raises(ValueError, match="split"):
        c.patchwork_losses(theta, split="random")


def test_patchwork_slice_matches_pointwise_losses():
    theta = torch.tensor(c.PATCHWORK_THETA, dtype=torch.float64)
    axes = [np.array([0.5, 1.0]), np.array([-0.5, 1.0, 2.0])]
    grid = c.patchwork_slice(theta, axes)
    assert grid.shape == (2, 2, 3)
    point = theta.clone()
    point[4], point[5] = 0.5, 2.0
    np.testing.assert_allclose(grid[:, 0, 2], c.patchwork_losses(point).numpy(), rtol=1e-12)


def test_fit_patchwork_lowers_the_pooled_loss_of_each_start():
    theta0 = torch.tensor(
        [[40.0, -18.0, 40.0, -30.0, 0.8, 1.2], [20.0, -5.0, 30.0, -20.0, 1.0, 1.0]],
        dtype=torch.float64,
    )
    before = c.patchwork_losses(theta0).mean(0)
    fitted, after = c.fit_patchwork(theta0, steps=200, lr=0.05)
    assert fitted.shape == (2, 6) and (after < before).all()
    np.testing.assert_allclose(after.numpy(), c.patchwork_losses(fitted).mean(0).numpy())
    alone, _ = c.fit_patchwork(theta0[:1], steps=200, lr=0.05)  # starts do not interact
    np.testing.assert_allclose(alone[0].numpy(), fitted[0].numpy(), rtol=1e-9)


def test_check_proposition_slip(capsys):
    assert checks.check_proposition_slip(lambda: (4, 4.0))
    assert capsys.readouterr().out.startswith("✓ proposition_slip")
    for wrong in (lambda: (5, 4.0), lambda: (4, 2.0), lambda: 4, lambda: ("4", 4)):
        assert not checks.check_proposition_slip(wrong)
        out = capsys.readouterr().out
        assert out.startswith("✗ proposition_slip") and "line 4" not in out

    def not_yet():
        raise NotImplementedError

    assert not checks.check_proposition_slip(not_yet)
    assert "not implemented yet" in capsys.readouterr().out
