"""Unit tests of hvnotes.rrr, the notebook 03 data and checkers: each formula is compared with an
independent computation (central finite differences, a loop reference, a closed form)."""

from __future__ import annotations

import copy

import pytest
import torch

from hvnotes import checks, datasets, models, rrr


@pytest.fixture
def net():
    torch.manual_seed(0)
    return models.mlp(5, (6, 4), 3).double()


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (8,), generator=gen)
    a = torch.rand(8, 5, generator=gen) < 0.5
    return x, y, a


def sum_log_probs(model, x):
    """Per-example Σ_k log softmax(model(x))_k, ``(N,)``."""
    return torch.log_softmax(model(x), dim=1).sum(dim=1)


def fd_input_gradients(model, x, f=sum_log_probs, h=1e-6):
    """Central finite differences of a per-example scalar ``f`` with respect to each input."""
    grads = torch.zeros_like(x)
    with torch.no_grad():
        for d in range(x.shape[1]):
            step = torch.zeros_like(x)
            step[:, d] = h
            grads[:, d] = (f(model, x + step) - f(model, x - step)) / (2 * h)
    return grads


def test_input_gradients_match_finite_differences(net, batch):
    x, _, _ = batch
    got = rrr.input_gradients(net, x)
    assert got.shape == x.shape and not got.requires_grad
    torch.testing.assert_close(got, fd_input_gradients(net, x), rtol=1e-6, atol=1e-8)


def test_input_gradients_of_max_prob_match_finite_differences(net, batch):
    x, _, _ = batch

    def max_prob(model, xx):
        return torch.softmax(model(xx), dim=1).max(dim=1).values

    got = rrr.input_gradients(net, x, quantity="max_prob")
    torch.testing.assert_close(got, fd_input_gradients(net, x, max_prob), rtol=1e-6, atol=1e-8)


def test_gradient_of_summed_probabilities_vanishes(net, batch):
    x, _, _ = batch
    assert rrr.input_gradients(net, x, quantity="sum_probs").abs().max() < 1e-12
    # while the log-probability sum, RRR's choice, does not vanish
    assert rrr.input_gradients(net, x).abs().max() > 1e-3


def test_rr_term_matches_loop_over_finite_difference_gradients(net, batch):
    x, y, a = batch
    _, _, rr = rrr.rrr_loss(net, x, y, a, 3.0)
    g = fd_input_gradients(net, x)
    expected = 3.0 * sum(((a[n] * g[n]) ** 2).sum() for n in range(len(x))) / len(x)
    torch.testing.assert_close(rr.detach(), expected, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("quantity", ["max_log_prob", "max_prob", "sum_probs"])
def test_rr_term_of_each_loss_variant_matches_finite_differences(net, batch, quantity):
    x, y, a = batch
    per_example = {
        "max_log_prob": lambda m, xx: torch.log_softmax(m(xx), dim=1).max(dim=1).values,
        "max_prob": lambda m, xx: torch.softmax(m(xx), dim=1).max(dim=1).values,
        "sum_probs": lambda m, xx: torch.softmax(m(xx), dim=1).sum(dim=1),
    }[quantity]
    _, ce, rr = rrr.rrr_loss(net, x, y, a, 3.0, quantity=quantity)
    g = fd_input_gradients(net, x, per_example)
    expected = 3.0 * ((a * g) ** 2).sum() / len(x)
    torch.testing.assert_close(rr.detach(), expected, rtol=1e-5, atol=1e-10)
    assert ce.item() == pytest.approx(rrr.rrr_loss(net, x, y, a, 3.0)[1].item())
    with pytest.raises(ValueError, match="quantity"):
        rrr.rrr_loss(net, x, y, a, 3.0, quantity="log_sum")


def test_rr_parameter_gradient_matches_finite_differences(net, batch):
    x, y, a = batch
    _, _, rr = rrr.rrr_loss(net, x, y, a, 1.0)
    params = list(net.parameters())
    grads = torch.autograd.grad(rr, params)
    gen = torch.Generator().manual_seed(2)
    h = 1e-6
    for p, g in zip(params, grads, strict=True):
        for flat in torch.randint(0, p.numel(), (4,), generator=gen).tolist():
            old = p.view(-1)[flat].item()
            values = []
            for value in (old + h, old - h, old):  # the last one restores the parameter
                with torch.no_grad():
                    p.view(-1)[flat] = value
                values.append(rrr.rrr_loss(net, x, y, a, 1.0)[2].item())
            up, down = values[:2]
            assert g.view(-1)[flat].item() == pytest.approx(
                (up - down) / (2 * h), rel=1e-4, abs=1e-8
            )


def test_zero_annotations_reduce_to_cross_entropy(net, batch):
    x, y, a = batch
    for mask in (torch.zeros_like(a), torch.zeros(5, dtype=torch.bool)):
        total, ce, rr = rrr.rrr_loss(net, x, y, mask, 100.0)
        expected = -torch.log_softmax(net(x), dim=1)[torch.arange(len(y)), y].mean()
        torch.testing.assert_close(ce, expected)
        torch.testing.assert_close(total, expected)
        assert rr.item() == 0.0


def test_shared_mask_equals_repeated_per_row_mask(net, batch):
    x, y, a = batch
    shared = a[0]
    torch.testing.assert_close(
        rrr.rrr_loss(net, x, y, shared, 2.0)[2],
        rrr.rrr_loss(net, x, y, shared.expand_as(a), 2.0)[2],
    )


@pytest.mark.parametrize("shape", [(8, 4), (7, 5), (5, 8), (8, 5, 1), (3,)])
def test_mismatched_annotations_raise(net, batch, shape):
    x, y, _ = batch
    with pytest.raises(ValueError, match="annotations"):
        rrr.rrr_loss(net, x, y, torch.zeros(shape, dtype=torch.bool), 1.0)


def test_annotations_that_would_grow_the_batch_raise(net, batch):
    x, y, _ = batch
    with pytest.raises(ValueError, match="annotations"):
        rrr.rrr_loss(net, x[:1], y[:1], torch.zeros(8, 5, dtype=torch.bool), 1.0)


def test_bad_arguments_raise(net, batch):
    x, y, a = batch
    with pytest.raises(ValueError, match="l2_grads"):
        rrr.rrr_loss(net, x, y, a, -1.0)
    with pytest.raises(ValueError, match="annotations"):
        rrr.rrr_loss(net, x, y, a.double() * 0.5, 1.0)
    with pytest.raises(TypeError, match="annotations"):
        rrr.rrr_loss(net, x, y, a.tolist(), 1.0)
    with pytest.raises(ValueError, match="quantity"):
        rrr.input_gradients(net, x, quantity="logits")
    with pytest.raises(ValueError, match="cutoff"):
        rrr.largest_gradient_mask(x, cutoff=1.0)


def test_largest_gradient_mask_matches_loop():
    gen = torch.Generator().manual_seed(4)
    g = torch.randn(5, 3, 4, 3, generator=gen)
    got = rrr.largest_gradient_mask(g, 0.67)
    for n in range(len(g)):
        assert torch.equal(got[n], g[n].abs() > 0.67 * g[n].abs().max())
    per_pixel = rrr.largest_gradient_mask(g, 0.67, channel_dim=-1)
    assert torch.equal(per_pixel, got.any(dim=-1, keepdim=True).expand_as(got))
    assert not rrr.largest_gradient_mask(torch.zeros(2, 3)).any()


def test_gradient_mass_closed_form():
    g = torch.tensor([[1.0, -3.0, 0.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    region = torch.tensor([False, True, True, False])
    torch.testing.assert_close(rrr.gradient_mass(g, region), torch.tensor([3.0 / 8.0, 0.0]))


def shortcut_data(n=400):
    """Feature 0 equals the label (a perfect shortcut); feature 1 is a noisy copy."""
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (n,), generator=gen)
    x = torch.stack(
        [y.float() * 2 - 1, (y.float() * 2 - 1) + 0.7 * torch.randn(n, generator=gen)], 1
    )
    return x, y


def test_fit_rrr_keeps_per_row_annotations_with_their_rows():
    x, y = shortcut_data()
    reliance = {}
    for name, mask in [
        ("none", torch.zeros_like(x, dtype=torch.bool)),
        ("shortcut", x.new_zeros(x.shape).bool()),
    ]:
        if name == "shortcut":
            mask[:, 0] = True
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 2)
        history = rrr.fit_rrr(
            model, x, y, mask, 10.0, epochs=30, batch_size=64, lr=1e-2, progress=False
        )
        assert list(history.columns[:4]) == ["epoch", "loss", "ce", "rr"]
        assert len(history.attrs["steps"]) == 30 * 7
        w = model.weight.detach()
        reliance[name] = (w[1, 0] - w[0, 0]).abs().item() / (w[1] - w[0]).abs().sum().item()
    assert reliance["none"] > 0.5  # the shortcut is the easy reason
    assert reliance["shortcut"] < 0.05  # annotated away: the model uses the noisy feature


def test_find_another_explanation_unions_masks():
    x, y = shortcut_data(200)
    rounds = rrr.find_another_explanation(
        lambda: torch.nn.Linear(2, 2), x, y, 2, [1.0, 1.0], epochs=2, progress=False
    )
    assert len(rounds) == 2 and not rounds[0].annotations.any()
    assert torch.equal(rounds[1].annotations, rounds[0].mask)
    assert rounds[0].mask.dtype == torch.bool and rounds[0].mask.shape == x.shape


def test_trained_round_marks_each_examples_largest_gradients(net, batch):
    x, _, _ = batch
    r = rrr.trained_round(net, x)
    assert not r.annotations.any() and r.model is net
    for n in range(len(x)):  # a slow reference, one example at a time
        xn = x[n : n + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(torch.log_softmax(net(xn), dim=1).sum(), xn)
        assert torch.equal(r.mask[n], g[0].abs() > 0.67 * g.abs().max())
    with pytest.raises(ValueError, match="annotations must have x's shape"):
        rrr.trained_round(net, x, annotations=torch.zeros(3, dtype=torch.bool))


def test_rr_ce_ratio_grows_linearly_in_lambda(net, batch):
    x, y, a = batch
    torch.manual_seed(0)
    r1 = rrr.rr_ce_ratio(net, x, y, a, 1.0, steps=1, batch_size=8)
    r10 = rrr.rr_ce_ratio(net, x, y, a, 10.0, steps=1, batch_size=8)
    assert r10 == pytest.approx(10 * r1, rel=1e-9)  # one step: measured before any update


# --- data ---------------------------------------------------------------------------------------


def test_toy_colors_rules_each_predict_the_label():
    data = datasets.toy_colors(300, 300, seed=1)
    palette = torch.as_tensor(datasets.TOY_COLORS_PALETTE, dtype=torch.float32)
    for x, y in [(data.x_train, data.y_train), (data.x_test, data.y_test)]:
        assert x.shape == (300, 5, 5, 3)
        assert ((x[:, :, :, None, :] - palette).abs().sum(-1) < 1e-6).any(-1).all()
        for img, label in zip(x, y, strict=True):
            corners = {tuple(img[r, c].tolist()) for r, c in [(0, 0), (0, 4), (4, 0), (4, 4)]}
            top = [tuple(img[0, c].tolist()) for c in (1, 2, 3)]
            assert (len(corners) == 1) == (label == 0)
            assert (len(set(top)) == 3) == (label == 0)
    assert data.corners.sum() == 12 and data.top_middle.sum() == 9
    assert 0.4 < data.y_train.float().mean() < 0.6


def test_add_swatch_paints_the_corner_with_the_digit_shade():
    images = torch.rand(4, 10, 12)
    out, masks = datasets.add_swatch(
        images, torch.tensor([0, 9, 3, 5]), torch.tensor([0, 1, 2, 3]), 3
    )
    assert masks.sum(dim=(1, 2)).tolist() == [9, 9, 9, 9]
    assert masks[0, :3, :3].all() and masks[1, :3, -3:].all()
    assert masks[2, -3:, :3].all() and masks[3, -3:, -3:].all()
    assert out[1][masks[1]].unique().tolist() == pytest.approx([(255 - 225) / 255])
    assert torch.equal(out[~masks], images[~masks])
    with pytest.raises(ValueError, match="corners"):
        datasets.add_swatch(images, torch.zeros(4, dtype=torch.long), torch.full((4,), 4), 3)


def test_decoy_digits_shade_is_label_in_train_and_random_in_test():
    data = datasets.decoy_digits(seed=0)
    shade = lambda x, a: torch.stack([img[m].mean() for img, m in zip(x, a, strict=True)])  # noqa: E731
    assert torch.allclose(shade(data.x_train, data.a_train), datasets.swatch_shade(data.y_train))
    agree = (shade(data.x_test, data.a_test) - datasets.swatch_shade(data.y_test)).abs() < 1e-6
    assert agree.float().mean() < 0.25  # about 1 in 10 by chance
    assert torch.equal(data.x_train[~data.a_train], data.clean_train[~data.a_train])


def test_iris_cancer_shapes_and_annotations():
    data = datasets.iris_cancer(seed=0)
    assert data.x_train.shape == (67, 34) and data.x_test.shape == (33, 34)
    assert data.annotations.tolist() == [True] * 4 + [False] * 30
    assert data.x_train.mean(0).abs().max() < 1e-4


# --- checkers -------------------------------------------------------------------------------


def reference_penalty(model, x, annotations, l2_grads):
    y = torch.zeros(len(x), dtype=torch.long)
    return rrr.rrr_loss(model, x, y, annotations, l2_grads)[2]


def no_double_backprop(model, x, annotations, l2_grads):
    g = rrr.input_gradients(model, x)  # detached: the penalty cannot train the model
    return l2_grads * ((annotations * g) ** 2).sum(dim=1).mean()


def probability_sum(model, x, annotations, l2_grads):
    g = rrr.input_gradients(model, x, create_graph=True, quantity="sum_probs")
    return l2_grads * ((annotations * g) ** 2).sum(dim=1).mean()


def test_penalty_checker_passes_reference_and_fails_wrong_answers(capsys):
    assert checks.check_rrr_penalty(reference_penalty)
    assert capsys.readouterr().out == "✓ rrr_penalty: 4/4 checks passed\n"
    assert not checks.check_rrr_penalty(no_double_backprop)
    assert not checks.check_rrr_penalty(probability_sum)


def test_mask_checker_passes_reference_and_fails_wrong_answers(capsys):
    assert checks.check_largest_gradient_mask(rrr.largest_gradient_mask)
    assert capsys.readouterr().out == "✓ largest_gradient_mask: 4/4 checks passed\n"
    assert not checks.check_largest_gradient_mask(lambda g, c: g.abs() > c * g.abs().max())
    assert not checks.check_largest_gradient_mask(
        lambda g, c: g > c * g.flatten(1).max(1).values.view(-1, 1, 1)
    )


def test_find_another_explanation_rounds_do_not_depend_on_the_global_rng():
    x, y = shortcut_data(100)

    def weights():
        rounds = rrr.find_another_explanation(
            lambda: torch.nn.Linear(2, 2), x, y, 2, 1.0, epochs=1, progress=False
        )
        return [r.model.weight.detach().clone() for r in rounds]

    first = weights()
    torch.rand(7)  # move the global random stream
    for a, b in zip(first, weights(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="l2_grads"):
        rrr.find_another_explanation(lambda: torch.nn.Linear(2, 2), x, y, 2, [1.0], epochs=1)


def test_fit_rrr_keeps_distinct_per_row_annotations_with_their_rows():
    # Full batch: fit_rrr's shuffle cannot change the loss, so it must match a hand-written
    # Adam loop on rrr_loss with the same per-row masks; with the masks moved to other rows the
    # reference differs, so a misalignment inside fit_rrr would fail this test.
    x, y = shortcut_data(64)
    mask = torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) < 0.5
    torch.manual_seed(0)
    start = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))

    def reference(masks):
        model = copy.deepcopy(start)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(5):
            total = rrr.rrr_loss(model, x, y, masks, 10.0)[0]
            opt.zero_grad()
            total.backward()
            opt.step()
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    fitted = copy.deepcopy(start)
    rrr.fit_rrr(fitted, x, y, mask, 10.0, epochs=5, batch_size=64, lr=1e-2, progress=False)
    got = torch.cat([p.detach().flatten() for p in fitted.parameters()])
    torch.testing.assert_close(got, reference(mask), rtol=1e-4, atol=1e-6)
    misaligned = reference(mask.roll(1, dims=0))
    assert not torch.allclose(got, misaligned, rtol=1e-4, atol=1e-6)


def test_toy_colors_conflict_sets_the_two_rules_against_each_other():
    x, y_corners = datasets.toy_colors_conflict(500, seed=3)
    assert x.shape == (500, 5, 5, 3) and y_corners.shape == (500,)
    palette = torch.as_tensor(datasets.TOY_COLORS_PALETTE, dtype=torch.float32)
    colour = (x.unsqueeze(-2) - palette).abs().sum(-1).argmin(-1)  # (N, 5, 5) palette index
    corners = colour[:, [0, 0, 4, 4], [0, 4, 0, 4]]
    corners_match = (corners == corners[:, :1]).all(1)
    top = colour[:, 0, 1:4]
    top_all_differ = (top[:, 0] != top[:, 1]) & (top[:, 0] != top[:, 2]) & (top[:, 1] != top[:, 2])
    assert torch.equal(corners_match, y_corners == 0)  # rule 1 says y_corners
    assert torch.equal(top_all_differ, y_corners == 1)  # rule 2 says the other class
    assert 0.3 < y_corners.float().mean() < 0.7
    with pytest.raises(ValueError, match="n must be"):
        datasets.toy_colors_conflict(0)


def test_check_fae_control_accepts_every_valid_design_and_rejects_confounded_ones(capsys):
    # two valid designs that share nothing but the properties: a random area-matched mask, and
    # the first allowed positions of every example
    def random_design(rounds, lams, seed, rules):
        last = len(rounds) - 1
        a = rrr.area_matched_control(rounds[last].annotations, rules, seed=3)
        return {"annotations": a, "l2_grads": lams[last], "seed": seed + last}

    def first_allowed(rounds, lams, seed, rules):
        a = rounds[-1].annotations
        allowed = (~rules.expand_as(a[0])).flatten().nonzero().squeeze(1)
        out = torch.zeros_like(a).flatten(1)
        for i, k in enumerate(a.flatten(1).sum(1).tolist()):
            out[i, allowed[:k]] = True
        return {"annotations": out.view_as(a), "l2_grads": lams[-1], "seed": seed + len(rounds) - 1}

    assert checks.check_fae_control(random_design)
    assert capsys.readouterr().out == "✓ fae_control: 4/4 checks passed\n"
    assert checks.check_fae_control(first_allowed)
    previous_mask = lambda r, lams, seed, rules: {  # noqa: E731 (the old single answer)
        "annotations": r[-2].annotations, "l2_grads": lams[-1], "seed": seed + len(r) - 1
    }  # fmt: skip
    other_seed = lambda *a: random_design(*a) | {"seed": 0}  # noqa: E731
    own_mask = lambda r, *a: random_design(r, *a) | {"annotations": r[-1].annotations}  # noqa: E731
    mild = lambda r, lams, *a: random_design(r, lams, *a) | {"l2_grads": lams[0]}  # noqa: E731
    for confounded in (previous_mask, other_seed, own_mask, mild):
        assert not checks.check_fae_control(confounded)
    assert "✗ fae_control" in capsys.readouterr().out


def test_checkers_leave_the_global_rng_alone_even_when_the_answer_raises():
    state = torch.random.get_rng_state()

    def crashes(*args):
        raise RuntimeError("learner's bug")

    assert not checks.check_rrr_penalty(crashes)
    assert not checks.check_fae_control(crashes)
    assert not checks.check_lambda_choice(crashes)
    assert torch.equal(state, torch.random.get_rng_state())


def test_check_lambda_choice_wants_the_shifted_split_and_no_test_set(capsys):
    assert checks.check_lambda_choice(checks.reference_lambda_choice)
    assert capsys.readouterr().out == "✓ lambda_choice: 3/3 checks passed\n"
    by = lambda column: lambda t: float(t.loc[t[column].idxmax(), "lambda_1"])  # noqa: E731
    assert not checks.check_lambda_choice(by("test"))
    assert not checks.check_lambda_choice(by("confounded val"))
    assert not checks.check_lambda_choice(lambda t: 100.0)


def test_area_matched_control_keeps_each_examples_count_and_avoids_the_forbidden():
    gen = torch.Generator().manual_seed(0)
    annotations = torch.rand(30, 5, 5, 3, generator=gen) < 0.2
    annotations = annotations.any(-1, keepdim=True).expand(-1, -1, -1, 3)  # whole pixels
    forbidden = torch.zeros(5, 5, 3, dtype=torch.bool)
    forbidden[0] = True  # the top row
    control = rrr.area_matched_control(annotations, forbidden, seed=1, channel_dim=-1)
    assert control.shape == annotations.shape and control.dtype == torch.bool
    assert torch.equal(control.flatten(1).sum(1), annotations.flatten(1).sum(1))
    assert not (control & forbidden).any()
    assert torch.equal(control[..., 0], control[..., 2])  # all channels of a pixel together
    # uniform over the allowed positions: 4 of 20 annotated, 5 forbidden, so each of the 15
    # allowed positions is chosen with probability 4 / 15
    four = torch.zeros(4000, 20, dtype=torch.bool)
    four[:, :4] = True
    not_first_five = torch.arange(20) < 5
    share = rrr.area_matched_control(four, not_first_five, seed=2).float().mean(0)
    assert (share[:5] == 0).all()
    torch.testing.assert_close(share[5:], torch.full((15,), 4 / 15), atol=0.03, rtol=0)
    too_many = torch.ones(2, 5, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="outside forbidden"):
        rrr.area_matched_control(too_many, forbidden[..., 0])


def test_prediction_summary_matches_a_loop():
    torch.manual_seed(0)
    model = models.mlp(4, (5,), 3)
    x = torch.randn(50, 4)
    y = torch.randint(0, 3, (50,))
    got = rrr.prediction_summary(model, x, y)
    with torch.no_grad():
        rows = [torch.softmax(model(x[i : i + 1]), dim=1)[0] for i in range(len(x))]
    assert got["accuracy"] == pytest.approx(sum(int(p.argmax() == t) for p, t in zip(rows, y, strict=True)) / 50)  # fmt: skip
    assert got["confidence"] == pytest.approx(sum(p.max().item() for p in rows) / 50, rel=1e-5)
    assert got["p_true"] == pytest.approx(sum(p[t].item() for p, t in zip(rows, y, strict=True)) / 50, rel=1e-5)  # fmt: skip


def test_train_mlp_is_seeded_and_leaves_the_global_rng_alone():
    x, y = shortcut_data(64)
    state = torch.random.get_rng_state()
    a, _ = rrr.train_mlp(x, y, torch.zeros(2, dtype=torch.bool), 0.0, hidden=(4,), epochs=1, seed=5)
    assert torch.equal(state, torch.random.get_rng_state())
    b, _ = rrr.train_mlp(x, y, torch.zeros(2, dtype=torch.bool), 0.0, hidden=(4,), epochs=1, seed=5)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    assert a[-1].out_features == 2


def test_rule_use_reads_gradients_and_behaviour():
    # a linear model that reads only feature 0: all gradient mass there; it follows the rule
    # "feature 0 > 0 means class 1" on conflict inputs
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
        model.bias.zero_()
    x = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    y = torch.tensor([1, 0])
    row = rrr.rule_use(model, x, y, {"first": torch.tensor([True, False])},
                       {"follows first": (x, torch.tensor([1, 0]))})  # fmt: skip
    assert row["test acc"] == 1.0 and row["follows first"] == 1.0
    assert row["mass first"] == pytest.approx(1.0)
