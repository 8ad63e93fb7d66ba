"""Unit tests of hvnotes.phenomena (notebook 06): data, probes, the batched trainer, scoring."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch

from hvnotes import checks, datasets
from hvnotes import phenomena as ph
from hvnotes.models import GrokMLP

# ----------------------------------------------------------------------------- data


def test_modular_addition_has_every_pair_once_with_correct_labels():
    p = 7
    a, b, y = ph.modular_addition(p)
    assert a.shape == b.shape == y.shape == (p * p,)
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    assert pairs == set(itertools.product(range(p), range(p)))
    for ai, bi, yi in zip(a.tolist(), b.tolist(), y.tolist(), strict=True):
        assert yi == (ai + bi) % p  # a slow loop, independent of the tensor formula


def test_train_split_is_disjoint_covering_sized_and_seeded():
    p, frac = 11, 0.3
    mask = ph.train_split(p, frac, seed=3)
    assert mask.dtype == torch.bool and mask.shape == (p * p,)
    assert int(mask.sum()) == round(frac * p * p)
    train, test = (
        set(mask.nonzero().squeeze(1).tolist()),
        set((~mask).nonzero().squeeze(1).tolist()),
    )
    assert not train & test and train | test == set(range(p * p))
    assert torch.equal(mask, ph.train_split(p, frac, seed=3))
    assert not torch.equal(mask, ph.train_split(p, frac, seed=4))


@pytest.mark.parametrize("frac", [0.0, 1.0, -0.2, 1.5])
def test_train_split_rejects_bad_fractions(frac):
    with pytest.raises(ValueError, match="train_frac"):
        ph.train_split(7, frac)


def test_modular_addition_rejects_bad_p():
    with pytest.raises(ValueError, match="p must be"):
        ph.modular_addition(1)


# ----------------------------------------------------------------------------- E1: primes


def test_is_prime_matches_trial_division():
    def slow(n):
        return n >= 2 and all(n % q for q in range(2, int(math.isqrt(n)) + 1))

    values = np.arange(-20, 400)
    assert ph.is_prime(values).tolist() == [slow(int(n)) for n in values]
    with pytest.raises(TypeError, match="integers"):
        ph.is_prime(np.array([1.5]))


def test_prime_count_on_known_arrays():
    w = torch.tensor([0.4, 1.6, 2.2, 2.7, -2.7, 7.1, 9.0, -0.3])
    # round: 0, 2, 2, 3, -3, 7, 9, 0 -> primes 2, 2, 3, 7 (negatives do not count)
    assert ph.prime_count(w) == 4
    assert ph.prime_count(w, absolute=True) == 5  # |-3| = 3 counts too
    # x10: 4, 16, 22, 27, -27, 71, 90, -3 -> only 71 is prime (3 only in absolute mode)
    assert ph.prime_count(w, scale=10) == 1
    assert ph.prime_count(w, scale=10, absolute=True) == 2
    # several tensors add up, whatever their shapes
    assert ph.prime_count([w.reshape(2, 4), w[:3]]) == 4 + 2
    with pytest.raises(ValueError, match="scale"):
        ph.prime_count(w, scale=0)


# ----------------------------------------------------------------------------- E3: Fourier


def waves(p, amplitudes, d=6, seed=0):
    """A (p, d) table made of cos(2 pi f t / p + phase) waves, random phase per column."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(p, dtype=torch.float64)[:, None]
    table = torch.zeros(p, d, dtype=torch.float64)
    for f, amp in amplitudes.items():
        table += amp * torch.cos(2 * math.pi * f * t / p + torch.rand(d, generator=gen) * 6.28)
    return table


def test_fourier_probe_on_constructed_periodic_embedding():
    p = 37
    one = waves(p, {5: 1.0})
    assert ph.fourier_concentration(one, 1).item() == pytest.approx(1.0, abs=1e-6)
    assert ph.key_frequencies(one, 1) == [5]
    two = waves(p, {3: 2.0, 11: 1.0}) + 4.0  # a constant offset must not count
    assert ph.fourier_concentration(two, 1).item() == pytest.approx(0.8, abs=1e-6)  # 4 / (4 + 1)
    assert ph.fourier_concentration(two, 2).item() == pytest.approx(1.0, abs=1e-6)
    assert ph.key_frequencies(two, 2) == [3, 11]


def test_fourier_spectrum_obeys_parseval_and_shift_invariance():
    gen = torch.Generator().manual_seed(0)
    for p in (36, 37):  # even p: the Nyquist frequency has no mirror
        table = torch.randn(p, 5, generator=gen, dtype=torch.float64)
        power = ph.fourier_spectrum(table)
        assert power.shape == (p // 2,)
        centred = table - table.mean(0)
        assert power.sum().item() == pytest.approx(p * (centred**2).sum().item(), rel=1e-9)
        # relabelling tokens t -> t + 3 (mod p) only changes phases, never the power
        assert torch.allclose(ph.fourier_spectrum(table.roll(3, dims=0)), power)


def test_fourier_concentration_of_random_tables_is_near_k_over_frequencies():
    gen = torch.Generator().manual_seed(1)
    tables = torch.randn(200, 37, 64, generator=gen)
    conc = ph.fourier_concentration(tables, 6)
    assert conc.shape == (200,)
    assert 6 / 18 < conc.mean().item() < 0.45  # top-6 of 18 roughly equal bins


def test_fourier_project_keeps_the_top_waves_and_the_mean():
    p = 31
    clean = waves(p, {2: 3.0, 9: 2.0}) + 1.5
    noisy = clean + 0.01 * torch.randn(p, 6, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ph.fourier_project(noisy, 2), clean, atol=0.05)
    bottom = ph.fourier_project(noisy, 2, which="bottom")
    assert (bottom - bottom.mean(0)).abs().max() < 0.05  # the weakest frequencies: noise only
    with pytest.raises(ValueError, match="which"):
        ph.fourier_project(noisy, 2, which="middle")
    with pytest.raises(ValueError, match="k must"):
        ph.fourier_concentration(noisy, 16)


def test_random_control_is_energy_matched_and_avoids_the_top_frequencies():
    p = 37
    table = waves(p, {2: 3.0, 5: 2.0, 9: 1.0}, d=8) + 0.3 * torch.randn(
        p, 8, generator=torch.Generator().manual_seed(2)
    )
    top = ph.fourier_project(table, 3)
    control = ph.fourier_project(table, 3, "random", generator=torch.Generator().manual_seed(0))

    def energy(x):  # energy without the mean, by Parseval the projection's kept power / p
        return ((x - x.mean(0)) ** 2).sum().item()

    assert energy(control) == pytest.approx(energy(top), rel=1e-9)
    assert torch.allclose(control.mean(0), table.mean(0), atol=1e-6)
    kept = set((ph.fourier_spectrum(control) > 1e-9).nonzero().squeeze(1).add(1).tolist())
    assert len(kept) == 3 and not kept & {2, 5, 9}
    other = ph.fourier_project(table, 3, "random", generator=torch.Generator().manual_seed(5))
    assert not torch.allclose(other, control)  # the draw depends on the generator


def test_group_order_walks_the_multiplicative_group():
    p = 37
    order = ph.group_order(p, "multiply")
    assert sorted(order.tolist()) == list(range(1, p))  # every non-zero residue once
    g = int(order[1])
    assert all(int(order[i]) == pow(g, i, p) for i in range(p - 1))
    assert ph.group_order(p, "add").tolist() == list(range(p))
    # a table made of a wave of the discrete log is concentrated in that order, not in token order
    log = torch.empty(p, dtype=torch.long)
    log[order] = torch.arange(p - 1)
    table = torch.zeros(p, 4, dtype=torch.float64)
    phase = torch.rand(4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    table[1:] = torch.cos(2 * math.pi * 5 * log[1:, None] / (p - 1) + 6.28 * phase)
    assert ph.fourier_concentration(table, 1, order).item() == pytest.approx(1.0, abs=1e-9)
    assert ph.fourier_concentration(table[1:], 1).item() < 0.5


def test_multiplication_pairs_labels_and_splits():
    p = 7
    a, b, y = datasets.modular_arithmetic(p, "multiply")
    assert len(y) == (p - 1) ** 2 and set(y.tolist()) == set(range(1, p))
    for ai, bi, yi in zip(a.tolist(), b.tolist(), y.tolist(), strict=True):
        assert yi == (ai * bi) % p and ai and bi
    mask = ph.train_split(p, 0.5, seed=0, operation="multiply")
    assert mask.shape == ((p - 1) ** 2,) and int(mask.sum()) == 18
    with pytest.raises(ValueError, match="operation"):
        ph.train_split(p, 0.5, operation="divide")


def test_stablemax_cross_entropy_matches_its_formula_and_stays_finite():
    logits = torch.tensor([[2.0, -1.0, 0.5], [30.0, -30.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 2])

    def s(z):
        return z + 1 if z >= 0 else 1 / (1 - z)

    got_all = ph.stablemax_cross_entropy(logits, y)
    for row, target, got in zip(logits.tolist(), y.tolist(), got_all, strict=True):
        want = -math.log(s(row[target]) / sum(s(z) for z in row))
        assert got.item() == pytest.approx(want, rel=1e-12)
    huge = torch.tensor([[1e4, 0.0, 0.0]])
    assert 0 < ph.stablemax_cross_entropy(huge, torch.tensor([0])).item() < 1e-3
    # softmax cross-entropy of the same row rounds to exactly 0 in float32: collapse
    assert ph.softmax_collapse_rate(huge, torch.tensor([0])).item() == 1.0
    assert ph.softmax_collapse_rate(logits.float(), y).item() == 0.0


def test_grok_time_interpolates_in_log_steps():
    rows = [
        {"label": "r", "step": s, "test_loss": v} for s, v in [(0, 9.0), (100, 4.0), (200, 0.25)]
    ]
    rows += [{"label": "never", "step": s, "test_loss": 5.0} for s in (0, 100, 200)]
    t = ph.grok_time(pd.DataFrame(rows), threshold=1.0)
    # log-linear between (100, 4) and (200, 0.25): log 1 is halfway between log 4 and log 0.25
    assert t["r"] == pytest.approx(100 * 2**0.5, rel=1e-9)
    assert np.isnan(t["never"])
    with pytest.raises(ValueError, match="threshold"):
        ph.grok_time(pd.DataFrame(rows), threshold=0)


# ----------------------------------------------------------------------------- model and runs


def test_grok_mlp_copies_are_independent_and_shaped():
    both = GrokMLP(7, 4, 8, seeds=(0, 1), init_scale=(1.0, 2.0))
    alone = GrokMLP(7, 4, 8, seeds=(1,), init_scale=2.0)
    a, b, _ = ph.modular_addition(7)
    out = both(a, b)
    assert out.shape == (2, 49, 7)
    assert torch.allclose(out[1], alone(a, b)[0], atol=1e-6)
    per_copy = both(torch.stack([a[:5], a[5:10]]), torch.stack([b[:5], b[5:10]]))
    assert torch.allclose(per_copy[1], out[1, 5:10], atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        both(a, b[:3])


def test_run_matches_torch_adamw_and_runs_do_not_interact():
    p, steps, lr, wd = 7, 6, 1e-2, 0.5
    hist, model = ph.run_grokking(
        p, weight_decay=[wd, 0.0], seed=[0, 1], steps=steps, lr=lr, embed_dim=4, hidden=8,
        eval_every=3, prime_scales=(1,), top_k=2, return_model=True,
    )  # fmt: skip
    # reference: run 0 alone, trained by torch.optim.AdamW in a plain loop
    ref = GrokMLP(p, 4, 8, seeds=(0,))
    opt = torch.optim.AdamW(ref.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=wd)
    a, b, y = ph.modular_addition(p)
    rows = ph.train_split(p, 0.5, 0).nonzero().squeeze(1)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(ref(a[rows], b[rows])[0], y[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
    for name, w in ref.named_parameters():
        assert torch.allclose(getattr(model, name)[0], w[0], atol=1e-5), name
    assert list(hist["step"].unique()) == [0, 3, 6]  # eval_every // 5 = 0: no early rows
    assert set(hist["label"]) == {"run 0", "run 1"}
    for col in ["train_acc", "test_acc", "norm_w1", "primes_x1", "primes_abs_x1", "fourier_top2"]:
        assert col in hist
    assert ((hist["fourier_top2"] >= 0) & (hist["fourier_top2"] <= 1)).all()


def test_run_rejects_mismatched_lists():
    with pytest.raises(ValueError, match="equal lengths"):
        ph.run_grokking(7, weight_decay=[1.0, 0.0], seed=[0, 1, 2], steps=1)
    with pytest.raises(ValueError, match="labels"):
        ph.run_grokking(7, weight_decay=[1.0, 0.0], labels=["a", "a"], steps=1)


# ----------------------------------------------------------------------------- reading histories


def toy_history():
    rows = []
    for label, tests in {"fast": [0, 0.5, 0.96, 1.0], "never": [0, 0.1, 0.2, 0.3]}.items():
        for i, t in enumerate(tests):
            rows.append({"label": label, "step": 10 * i, "train_acc": min(1.0, 0.5 * i),
                         "test_acc": t, "primes_x1": 5 - i if label == "fast" else 5 + i,
                         "weight_decay": 1.0, "train_frac": 0.5, "seed": 0, "init_scale": 1.0})  # fmt: skip
    return pd.DataFrame(rows)


def test_steps_to_summarize_and_probe_change():
    hist = toy_history()
    s = ph.summarize(hist)
    assert list(s.index) == ["fast", "never"]
    assert s.loc["fast", "fit_step"] == 20 and s.loc["fast", "grok_step"] == 20
    assert np.isnan(s.loc["never", "grok_step"])
    change = ph.probe_change(hist, "primes_x1")
    assert change["fast"] == 2 - 3 and change["never"] == 8 - 7


# ----------------------------------------------------------------------------- checker


def test_checker_accepts_reference_and_rejects_wrong_answers(capsys):
    assert checks.check_fourier_concentration(ph.fourier_concentration)

    def with_constant(embed, k):  # forgets to drop frequency 0
        power = (torch.fft.rfft(embed.double(), dim=-2).abs() ** 2).sum(-1)
        return power.topk(k, dim=-1).values.sum(-1) / power.sum(-1)

    def unsquared(embed, k):  # magnitudes instead of energies
        power = torch.fft.rfft(embed.double(), dim=-2).abs().sum(-1)[..., 1:]
        return power.topk(k, dim=-1).values.sum(-1) / power.sum(-1)

    assert not checks.check_fourier_concentration(with_constant)
    assert not checks.check_fourier_concentration(unsquared)
    out = capsys.readouterr().out
    assert "✓ fourier_concentration: 4/4 checks passed" in out and "✗" in out


def test_exact_zero_rate_counts_masked_zeros_per_run():
    losses = torch.tensor([[0.0, 0.5, 0.0, 0.0], [0.1, 0.0, 0.2, 0.3]])
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    assert ph.exact_zero_rate(losses, mask).tolist() == pytest.approx([2 / 3, 1 / 2])
    with pytest.raises(ValueError, match="mask"):
        ph.exact_zero_rate(losses, mask.float())


def test_collapse_is_read_on_each_run_own_loss():
    # a large learning rate without decay: float32 softmax cross-entropy of many training pairs
    # rounds to exactly 0; StableMax's loss of the same run never does
    common = dict(seed=[0], steps=200, lr=0.3, embed_dim=4, hidden=8, eval_every=200, top_k=2)
    soft = ph.run_grokking(7, weight_decay=[0.0], loss="softmax", **common)
    stable = ph.run_grokking(7, weight_decay=[0.0], loss="stablemax", **common)
    assert soft["collapse"].iloc[-1] > 0.3
    assert stable["collapse"].iloc[-1] == 0.0
