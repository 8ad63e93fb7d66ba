"""DomainBed-style algorithms: each ``update`` equals, on the same batch, the code it will replace
(``andmask.and_mask_step``, the benchmark's methods as notebook 05 trained them before its rewrite,
frozen in ``benchmark_reference.py``, a step on ``rrr.rrr_loss``, ``sst.sst_loss`` and
``train.fit``), and every algorithm trains through ``train.run(algorithm.update, batches)``."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import benchmark_reference
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hvnotes import algorithms, andmask, benchmark, hparams, models, rrr, sst, train

E, B, SIDE = 3, 8, 4  # environments, examples per environment, image side


def batch(seed=0, classes=3):
    g = torch.Generator().manual_seed(seed)
    xs = torch.rand(E, B, SIDE, SIDE, generator=g)
    ys = torch.randint(0, classes, (E, B), generator=g)
    return xs, ys


def network(seed=0, classes=3, hidden=(16,)):
    torch.manual_seed(seed)
    return models.mlp(SIDE * SIDE, hidden, classes)


def assert_same_parameters(a: nn.Module, b: nn.Module, atol=1e-6):
    moved = False
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=atol, rtol=1e-5, msg=name)
    for p, q in zip(a.parameters(), network().parameters(), strict=True):
        moved |= not torch.equal(p, q)
    assert moved, "the step changed nothing: the comparison would prove nothing"


# ----------------------------------------------------------------------------- the equivalences


def test_erm_on_stacked_batches_is_benchmarks_erm():
    xs, ys = batch()
    net, ref = network(), network()
    algo = algorithms.ERM(net, {"lr": 3e-3, "weight_decay": 1e-4, "optimizer": "adamw"},
                          stacked=True)  # fmt: skip
    old = benchmark_reference.ERM(ref, None, lr=3e-3, weight_decay=1e-4)
    for step in range(2):
        ref.train()
        assert algo.update(xs, ys) == old.update(xs, ys, step)
    assert_same_parameters(net, ref, atol=0)


def test_erm_on_a_plain_batch_is_a_step_of_fit():
    xs, ys = batch()
    x, y = xs.flatten(0, 1), ys.flatten()
    net, ref = network(), network()
    algorithms.ERM(net, {"lr": 1e-2}).update(x, y)
    train.fit(ref, x, y, epochs=1, batch_size=len(x), lr=1e-2, progress=False)  # one step
    assert_same_parameters(net, ref)  # fit's batch is shuffled: the same sum in another order


@pytest.mark.parametrize(
    ("cls", "method", "extra"),
    [
        (algorithms.ANDMask, "and", {"tau": 0.6, "rescale": True}),
        (algorithms.ANDMask, "and", {"tau": 1.0}),
        (algorithms.GeometricMean, "geom", {"tau": 0.6}),
        (algorithms.SANDMask, "sand", {"tau": 0.3, "k": 3.0, "rescale": True}),
    ],
)
def test_the_and_mask_family_is_and_mask_step(cls, method, extra):
    xs, ys = batch()
    net, ref = network(), network()
    algo = cls(net, {"lr": 1e-2, "weight_decay": 1e-3} | extra)
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2, weight_decay=1e-3)
    for seed in range(2):
        xs, ys = batch(seed)
        terms = algo.update(xs, ys)
        loss, kept = andmask.and_mask_step(
            ref, F.cross_entropy, xs, ys, opt, extra["tau"], method=method,
            rescale=extra.get("rescale", False), k=extra.get("k", 10.0),
        )  # fmt: skip
        assert terms["loss"] == loss and terms["kept"] == pytest.approx(
            sum(kept.values()) / len(kept)
        )
        assert all(terms[f"kept_{name}"] == value for name, value in kept.items())
    assert_same_parameters(net, ref, atol=0)


def test_temporal_and_mask_is_the_pooled_step_with_the_temporal_optimizer():
    net, ref = network(), network()
    hp = {"lr": 5e-3, "tau": 0.7, "beta3": 0.8, "weight_decay": 0.05}
    algo = algorithms.TemporalANDMask(net, hp)
    opt = andmask.TemporalAndMaskAdam(ref.parameters(), **hp)
    for seed in range(4):  # one environment per step, as notebook 02 trains it
        xs, ys = batch(seed)
        terms = algo.update(xs[:1], ys[:1])
        loss, _ = andmask.and_mask_step(ref, F.cross_entropy, xs[:1], ys[:1], opt, tau=0.0)
        assert terms["loss"] == loss and 0.0 <= terms["kept"] <= 1.0
    assert_same_parameters(net, ref, atol=0)


def test_irmv1_is_benchmarks_irmv1_across_the_penalty_switch():
    net, ref = network(), network()
    hp = {"irm_weight": 50.0, "irm_anneal": 2}
    algo = algorithms.IRMv1(net, hp | {"lr": 3e-3, "weight_decay": 1e-4, "optimizer": "adamw"})
    old = benchmark_reference.IRMv1(ref, None, lr=3e-3, weight_decay=1e-4, **hp)
    for step in range(4):
        xs, ys = batch(step)
        ref.train()
        assert algo.update(xs, ys) == old.update(xs, ys, step)
    assert_same_parameters(net, ref, atol=0)  # clearing Adam's state = a fresh Adam


def test_irm_penalty_is_benchmarks():
    logits, y = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    assert torch.equal(algorithms.irm_penalty(logits, y), benchmark.irm_penalty(logits, y))


def test_rrr_is_a_step_on_rrr_loss_per_row_or_shared_annotations():
    xs, ys = batch()
    x, y = xs.flatten(0, 1), ys.flatten()
    rows = torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) < 0.3
    for mask in (rows, rows[0]):
        net, ref = network(), network()
        hp = {"l2_grads": 5.0, "lr": 1e-2}
        if mask.shape == x.shape:  # one mask per row, in the batch
            terms = algorithms.RRR(net, hp).update(x, y, mask)
        else:  # one mask for every row, given once
            terms = algorithms.RRR(net, hp, annotations=mask).update(x, y)
        opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
        ref.train()
        total, ce, rr = rrr.rrr_loss(ref, x, y, mask, 5.0)
        opt.zero_grad()
        total.backward()
        opt.step()
        assert terms == {"loss": total.item(), "ce": ce.item(), "rr": rr.item()}
        assert_same_parameters(net, ref, atol=0)


def test_rrr_on_stacked_batches_is_benchmarks_rrr():
    xs, ys = batch()
    shortcut = torch.zeros(SIDE, SIDE, dtype=torch.bool)
    shortcut[0] = True
    net, ref = network(), network()
    hp = {"l2_grads": 10.0, "lr": 3e-3, "weight_decay": 1e-4, "optimizer": "adamw"}
    algo = algorithms.RRR(net, hp, annotations=shortcut, stacked=True)
    old = benchmark_reference.RRR(
        ref, SimpleNamespace(shortcut=shortcut), lr=3e-3, weight_decay=1e-4
    )
    ref.train()
    assert algo.update(xs, ys) == old.update(xs, ys, 0)
    assert_same_parameters(net, ref, atol=0)


@pytest.mark.parametrize("notion", ["baseline", "probabilistic", "robust"])
def test_sst_is_a_step_on_sst_loss_with_the_same_fills(notion):
    xs, ys = batch()
    x, y = xs.flatten(0, 1), ys.flatten()
    torch.manual_seed(0)
    net = models.DualHeadMLP((SIDE, SIDE), (16,), 3)
    ref = copy.deepcopy(net)
    kw = {"notion": notion, "xi": 0.5, "tau": 0.4, "eps": 0.1, "alpha": 0.02}
    algo = algorithms.SST(net, kw | {"pgd_steps": 3, "seed": 4, "lr": 1e-2})
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(4)
    for _ in range(2):
        terms = algo.update(x, y)
        ref.train()
        total, ce, faith, size = sst.sst_loss(ref, x, y, steps=3, generator=generator, **kw)
        opt.zero_grad()
        total.backward()
        opt.step()
        assert terms == {"loss": total.item(), "ce": ce.item(), "faith": faith.item(),
                         "size_batch": size.item()}  # fmt: skip
    for p, q in zip(net.parameters(), ref.parameters(), strict=True):
        assert torch.equal(p, q)


# ----------------------------------------------------------------------------- the contract


def make(name):
    if name == "SST":
        torch.manual_seed(0)
        return algorithms.SST(models.DualHeadMLP((SIDE, SIDE), (16,), 3), stacked=True)
    kw = {"annotations": torch.zeros(SIDE, SIDE, dtype=torch.bool)} if name == "RRR" else {}
    cls = algorithms.get_algorithm(name)
    return cls(network(), stacked=True, **kw) if not cls.needs_envs else cls(network(), **kw)


@pytest.mark.parametrize("name", list(algorithms.ALGORITHMS))
def test_every_algorithm_trains_through_the_one_loop(name):
    algo = make(name)
    before = [p.clone() for p in algo.parameters()]
    # eight steps: Temporal AND-mask's sign average needs 1 - 0.9^k >= tau = 0.5 to let one pass
    history = train.run(algo.update, [batch(0)] * 8, progress=False)
    assert history["step"].tolist() == [8] and "loss" in history
    assert algo.steps_done == 8
    assert any(not torch.equal(p, q) for p, q in zip(algo.parameters(), before, strict=True))
    algo.network.train()
    x = batch()[0][0]
    logits = algo.predict(x)
    assert logits.shape == (B, 3) and algo.network.training  # eval inside, mode restored
    assert torch.equal(train.predict(algo, x), logits.argmax(1))


def test_the_registry_is_the_one_place_for_hyper_parameters():
    # every method, and the generic unit of a loss of one's own (common hyper-parameters only)
    assert set(hparams.REGISTRY) == set(algorithms.ALGORITHMS) | {algorithms.Objective.name}
    assert hparams.default_hparams("objective") == {"lr": 1e-3, "weight_decay": 0.0,
                                                    "optimizer": "adam"}  # fmt: skip
    for name, cls in algorithms.ALGORITHMS.items():
        assert cls.name == name
        algo = make(name)
        assert algo.hparams == hparams.default_hparams(name)
    assert hparams.search_grid("AND-mask") == {"tau": benchmark_reference.SEARCH["AND-mask"]["tau"]}
    for name in ("ERM", "RRR", "IRMv1"):
        assert hparams.search_grid(name) == dict(benchmark_reference.SEARCH[name])
    assert hparams.REGISTRY["SST"]["threshold"].check("t", "hard") == "hard"
    assert set(sst.THRESHOLDS) == {"ste", "hard"}
    assert set(rrr._QUANTITIES) == {"sum_log_probs", "sum_probs", "max_prob", "max_log_prob"}


@pytest.mark.parametrize(
    ("name", "hp", "error", "message"),
    [
        ("AND-mask", {"tau": 1.5}, ValueError, r"tau must be a finite number in \[0, 1\]"),
        ("AND-mask", {"tua": 0.5}, ValueError, r"takes the hyper-parameters .* got \['tua'\]"),
        ("ERM", {"lr": float("inf")}, ValueError, "lr must be a finite number > 0"),
        ("ERM", {"optimizer": "rmsprop"}, ValueError, "optimizer must be one of"),
        ("SAND-mask", {"k": 0}, ValueError, "k must be a finite number > 0"),
        ("Temporal AND-mask", {"eps": float("inf")}, ValueError, "eps must be a finite number"),
        ("Temporal AND-mask", {"betas": (0.9, 1.0)}, ValueError, "betas"),
        ("IRMv1", {"irm_anneal": 2.5}, TypeError, "irm_anneal must be an int"),
        ("RRR", {"l2_grads": -1.0}, ValueError, "l2_grads must be a finite number >= 0"),
        ("SST", {"bounds": (1.0, 0.0)}, ValueError, "bounds must be"),
        ("SST", {"notion": "strong"}, ValueError, "notion must be one of"),
        ("AND-mask", {"rescale": 1}, TypeError, "rescale must be True or False"),
    ],
)
def test_bad_hyper_parameters_are_named_before_any_training(name, hp, error, message):
    net = network()
    before = [p.clone() for p in net.parameters()]
    with pytest.raises(error, match=message):
        algorithms.get_algorithm(name)(net, hp)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), before, strict=True))


def test_numpy_and_tensor_numbers_are_hyper_parameters():
    import numpy as np

    algo = algorithms.ANDMask(network(), {"tau": np.float32(0.5), "lr": torch.tensor(0.01)})
    assert algo.hparams["tau"] == 0.5 and algo.hparams["lr"] == pytest.approx(0.01)


def test_contract_errors():
    with pytest.raises(ValueError, match="needs environments"):
        algorithms.ANDMask(network(), stacked=False)
    with pytest.raises(ValueError, match="defined with cross-entropy"):
        algorithms.RRR(network(), loss_fn=F.mse_loss)
    with pytest.raises(TypeError, match="network must be a torch.nn.Module"):
        algorithms.ERM(lambda x: x)
    with pytest.raises(TypeError, match="logits_and_scores"):
        algorithms.SST(network())
    with pytest.raises(ValueError, match="needs one annotation mask"):
        algorithms.RRR(network()).update(*[t.flatten(0, 1) for t in batch()])
    with pytest.raises(ValueError, match="optimizer does not update"):
        algorithms.ERM(network(), optimizer=torch.optim.SGD(network(1).parameters(), lr=0.1))
    algo = algorithms.ERM(network(), optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    assert isinstance(algo.optimizer, torch.optim.SGD)
    with pytest.raises(ValueError, match="y must have 1 dimension"):
        algorithms.ERM(network()).update(batch()[0].flatten(0, 1), batch()[1].flatten()[:, None])
    with pytest.raises(ValueError, match=r"ys must be env-stacked|stacked alike"):
        algorithms.IRMv1(network()).update(batch()[0], batch()[1].flatten())
