"""Unit tests of notebook 05: the shortcut benchmark's data generator (checked with an
independent frame-lookup classifier), the IRMv1 penalty (finite differences), the method
runner (AND-mask with tau = 0 must be ERM), the first-layer agreement (a loop over
environments) and the exercise checker."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hvnotes import benchmark, checks, datasets, models


@pytest.fixture(scope="module")
def data():
    return datasets.shortcut_digits(n_envs=4, seed=0)


def test_shapes_and_environment_count(data):
    n_train = 1347  # 75 % of scikit-learn's 1 797 digits
    for n_envs in (1, 2, 5, 32):
        d = datasets.shortcut_digits(n_envs=n_envs)
        per_env = n_train // n_envs
        assert d.x_train.shape == (n_envs, per_env, 12, 12)
        assert d.y_train.shape == (n_envs, per_env)
        assert d.codes.shape == (n_envs, 10, 12, 12)
        assert d.x_id.shape == d.x_shift.shape == (450, 12, 12)
        assert d.y_test.shape == d.env_id.shape == d.shift_class.shape == (450,)
        assert int(d.env_id.max()) < n_envs
    assert data.shortcut.sum() == 144 - 64  # the frame around the 8x8 digit
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    narrow = datasets.shortcut_digits(n_envs=3, width=1)
    assert narrow.x_train.shape[2:] == (10, 10) and narrow.shortcut.sum() == 36


def test_every_environment_uses_the_same_digits_once():
    a = datasets.shortcut_digits(n_envs=2)
    b = datasets.shortcut_digits(n_envs=7)
    inner = slice(2, -2)
    rows_a = {tuple(r.tolist()) for r in a.x_train[:, :, inner, inner].flatten(0, 1).flatten(1)}
    rows_b = {tuple(r.tolist()) for r in b.x_train[:, :, inner, inner].flatten(0, 1).flatten(1)}
    assert len(rows_b) >= 1347 - 7 - 5  # distinct digits (a few scikit-learn duplicates)
    assert len(rows_b - rows_a) <= 7  # the same pool, only the partition (and leftovers) differ


def test_frame_carries_the_environment_code(data):
    frame = data.shortcut
    for e in range(data.codes.shape[0]):
        expected = data.codes[e, data.y_train[e]]
        assert torch.equal(data.x_train[e] * frame, expected)
    lit = (data.codes > 0).flatten(2).sum(2)
    assert (lit == 40).all()  # density 0.5 of 80 frame pixels
    assert not (data.codes * ~frame).any()  # codes never touch the digit
    # every environment has its own code book
    for e in range(1, data.codes.shape[0]):
        assert not torch.equal(data.codes[0], data.codes[e])


def frame_lookup(data, x):
    """An independent shortcut classifier: the class whose code (in any environment) the frame
    shows, read off the *training set* by exact match; -1 if none."""
    table = {}
    for xi, yi in zip(data.x_train.flatten(0, 1), data.y_train.flatten(), strict=True):
        table[tuple((xi * data.shortcut).flatten().tolist())] = int(yi)
    return torch.tensor([table.get(tuple((xi * data.shortcut).flatten().tolist()), -1) for xi in x])


def test_shortcut_works_in_distribution_and_is_broken_at_test(data):
    assert (frame_lookup(data, data.x_id) == data.y_test).all()
    shift_acc = (frame_lookup(data, data.x_shift) == data.y_test).float().mean().item()
    assert shift_acc < 0.2  # random codes: right about 10 % of the time
    assert (data.shift_class == data.y_test).float().mean() < 0.2
    # the digits themselves are identical in both test sets
    assert torch.equal(data.x_id * ~data.shortcut, data.x_shift * ~data.shortcut)


def test_seeded_and_bad_arguments():
    a, b = datasets.shortcut_digits(3, seed=1), datasets.shortcut_digits(3, seed=1)
    assert all(torch.equal(s, t) for s, t in zip(a, b, strict=True))
    assert not torch.equal(a.codes, datasets.shortcut_digits(3, seed=2).codes)
    for kw in (
        {"n_envs": 0},
        {"n_envs": 2000},
        {"width": 0},
        {"density": 1.0},
        {"density": 0},
        {"brightness": 0},
    ):
        with pytest.raises(ValueError):
            datasets.shortcut_digits(**kw)
    with pytest.raises(TypeError):
        datasets.shortcut_digits(seed=0.5)


def test_irm_penalty_matches_finite_differences():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(12, 10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (12,), generator=g)
    h = 1e-6
    d = (F.cross_entropy(logits * (1 + h), y) - F.cross_entropy(logits * (1 - h), y)) / (2 * h)
    got = benchmark.irm_penalty(logits, y)
    assert torch.allclose(got, d**2, rtol=1e-6)
    assert benchmark.irm_penalty(logits.requires_grad_(True), y).requires_grad


def test_and_mask_with_tau_zero_is_erm(data):
    erm = benchmark.train("ERM", data, steps=5, batch_per_env=16).model
    andm = benchmark.train("AND-mask", data, steps=5, batch_per_env=16, tau=0.0).model
    for p, q in zip(erm.parameters(), andm.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)
    strict = benchmark.train("AND-mask", data, steps=5, batch_per_env=16, tau=1.0).model
    assert not all(
        torch.allclose(p, q) for p, q in zip(erm.parameters(), strict.parameters(), strict=True)
    )
    with pytest.raises(ValueError, match="method"):
        benchmark.train("SGD", data)
    with pytest.raises(ValueError, match="batch_per_env"):
        benchmark.train("ERM", data, batch_per_env=10_000)
    with pytest.raises(ValueError, match="hyper-parameters"):
        benchmark.train("ERM", data, tau=1.0)  # another method's knob: a clear error


def test_every_method_logs_its_terms_and_the_registry_has_its_defaults(data):
    assert benchmark.HPARAMS == {
        "ERM": {},
        "AND-mask": {"tau": 1.0},
        "RRR": {"l2_grads": 10.0},
        "IRMv1": {"irm_weight": 100.0, "irm_anneal": 100},
    }
    irm = benchmark.train("IRMv1", data, steps=6, batch_per_env=8, log_every=2, irm_anneal=3)
    assert list(irm.history["step"]) == [2, 4, 6]
    assert {"loss", "ce", "penalty", "seconds"} <= set(irm.history.columns)
    assert not irm.model.training
    rrr_run = benchmark.train("RRR", data, steps=2, batch_per_env=8)
    assert {"ce", "rr"} <= set(rrr_run.history.columns)


def test_irm_resets_adam_when_the_penalty_switches_on(data):
    # after the reset Adam's first step has the full size lr in every moving weight, as at the start
    run = benchmark.train("IRMv1", data, steps=3, batch_per_env=8, irm_anneal=2, lr=1e-2)
    ref = benchmark.train("IRMv1", data, steps=2, batch_per_env=8, irm_anneal=2, lr=1e-2)
    step = torch.cat(
        [
            (p - q).flatten()
            for p, q in zip(run.model.parameters(), ref.model.parameters(), strict=True)
        ]
    )
    moved = step[step.abs() > 1e-7].abs()
    assert moved.median().item() == pytest.approx(1e-2, rel=0.02)


def test_first_layer_agreement_against_a_loop(data):
    torch.manual_seed(0)
    model = models.mlp(144, (8,), 10)
    got = benchmark.first_layer_agreement(model, data)
    signs = []
    for e in range(data.x_train.shape[0]):
        model.zero_grad()
        F.cross_entropy(model(data.x_train[e]), data.y_train[e]).backward()
        signs.append(model[1].weight.grad.sign())
    agreement = torch.stack(signs).mean(0).abs()
    used = (data.x_train != 0).flatten(0, 1).any(0).flatten()
    frame = data.shortcut.flatten()
    assert got["frame"] == pytest.approx(agreement[:, frame & used].mean().item(), abs=1e-6)
    assert got["digit"] == pytest.approx(agreement[:, ~frame & used].mean().item(), abs=1e-6)


def test_reasons_of_a_short_run_are_fractions(data):
    model = benchmark.train("RRR", data, steps=20, batch_per_env=32).model
    row = benchmark.reasons(model, data, n_explain=3)
    assert set(row) >= {"train", "id", "shift", "grad_on_frame", "subset_size", "subset_has_frame"}
    assert all(0.0 <= v <= 1.0 for v in row.values())


def test_checker_passes_reference_and_fails_wrong_answers(capsys):
    assert checks.check_irm_penalty(benchmark.irm_penalty)

    def not_squared(logits, y):
        s = torch.ones((), dtype=logits.dtype, requires_grad=True)
        (g,) = torch.autograd.grad(F.cross_entropy(logits * s, y), s, create_graph=True)
        return g

    def detached(logits, y):
        s = torch.ones((), dtype=logits.dtype, requires_grad=True)
        (g,) = torch.autograd.grad(F.cross_entropy(logits * s, y), s)
        return g.square()

    assert not checks.check_irm_penalty(not_squared)
    assert not checks.check_irm_penalty(detached)
    out = capsys.readouterr().out
    assert "✓ irm_penalty" in out and "✗ irm_penalty" in out


def test_coin_agreement_matches_a_simulation():
    g = torch.Generator().manual_seed(0)
    for n in (2, 5, 8):
        signs = torch.randint(0, 2, (200_000, n), generator=g).float() * 2 - 1
        level = signs.mean(1).abs()
        assert benchmark.coin_agreement(n) == pytest.approx(level.mean().item(), abs=3e-3)
        means = level.view(-1, 50).mean(1)  # 4000 averages over 50 units
        assert benchmark.coin_spread(n, 50) == pytest.approx(means.std().item(), rel=0.05)


def test_leave_one_environment_out_never_looks_at_the_test_sets(data):
    poisoned = data._replace(
        x_id=torch.full_like(data.x_id, float("nan")),
        x_shift=torch.full_like(data.x_shift, float("nan")),
        x_new=torch.full_like(data.x_new, float("nan")),
    )
    table = benchmark.leave_one_environment_out(
        "AND-mask", poisoned, {"tau": (0.0, 1.0)}, held_out=1, steps=3, batch_per_env=8
    )
    assert list(table["value"]) == [0.0, 1.0] and table["chosen"].sum() == 1
    assert ((table["validation"] >= 0) & (table["validation"] <= 1)).all()
    with pytest.raises(ValueError, match="held_out"):
        benchmark.leave_one_environment_out("ERM", data, held_out=99, steps=1)


def test_disagreement_mask_finds_the_frame_without_the_annotation(data):
    torch.manual_seed(0)
    model = models.mlp(144, (32,), 10)
    agreement = benchmark.pixel_agreement(model, data)
    mask = benchmark.disagreement_mask(agreement, data, delta=0.05)
    assert mask.shape == data.shortcut.shape
    frame_share = (mask & data.shortcut).sum() / mask.sum().clamp_min(1)
    assert frame_share > 0.7  # mostly frame pixels, though nothing told it where the frame is


def test_per_method_hyper_parameters_reach_only_their_method(data):
    sweep = benchmark.env_sweep(
        (2,), ("ERM", "AND-mask"), hparams={"AND-mask": {"tau": 0.5}}, steps=2, batch_per_env=8
    )
    assert list(sweep["method"]) == ["ERM", "AND-mask"]  # ERM was not handed tau
    with pytest.raises(ValueError, match="hparams"):
        benchmark.seed_table(data, ("ERM",), seeds=[0], hparams={"RRR": {}}, steps=1)


def test_check_coin_level_accepts_reference_and_rejects_mistakes(capsys):
    assert checks.check_coin_level(benchmark.coin_agreement)
    assert not checks.check_coin_level(lambda n: 1 / math.sqrt(n))  # the Gaussian rate only
    assert not checks.check_coin_level(lambda n: math.sqrt(2 / (math.pi * n)))  # large-E limit
    assert "✗ coin_level" in capsys.readouterr().out
