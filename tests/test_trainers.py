"""Every trainer is ``train.run(algorithm.update, batches)``, and training through the
algorithms changed no number: each trainer, run here, gives bit for bit the losses and weights of
the loop it replaced (frozen in ``trainer_reference.py``) on the same data, seeds and optimizer."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
import trainer_reference as ref

from hvnotes import andmask, ensembles, grokking, models, rrr, sst, train

N, D, C = 40, 12, 3


def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(N, D, generator=g), torch.randint(0, C, (N,), generator=g)


def twins(build):
    torch.manual_seed(0)
    net = build()
    return net, copy.deepcopy(net)


def assert_same_weights(a, b):
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name


def moved(net, start):
    return any(not torch.equal(p, q) for p, q in zip(net.parameters(), start, strict=True))


# ----------------------------------------------------------------------------- fit


@pytest.mark.parametrize("custom", [False, True])
def test_fit_is_the_old_loop_with_erm_or_a_loss_of_ones_own(custom):
    x, y = data()
    net, old = twins(lambda: models.mlp(D, (8,), C))
    start = [p.clone() for p in net.parameters()]

    def terms(model, xb, yb):
        logits = model(xb)
        return {"loss": F.cross_entropy(logits, yb) + 0.1 * logits.square().mean(),
                "size": logits.square().mean()}  # fmt: skip

    kw = {"loss_fn": terms} if custom else {}
    history = train.fit(net, x, y, epochs=3, batch_size=16, lr=1e-2, weight_decay=1e-3, seed=5,
                        progress=False, log_steps=True, **kw)  # fmt: skip
    steps = ref.fit(old, x, y, epochs=3, batch_size=16, seed=5,
                    optimizer=torch.optim.Adam(old.parameters(), lr=1e-2, weight_decay=1e-3),
                    loss_fn=terms if custom else lambda m, xb, yb: F.cross_entropy(m(xb), yb))  # fmt: skip
    assert history.attrs["steps"].to_dict("records") == steps
    assert_same_weights(net, old)
    assert moved(net, start)


@pytest.mark.parametrize("per_row", [True, False])
def test_fit_rrr_is_the_old_loop_on_rrr_loss(per_row):
    x, y = data()
    rows = torch.rand(x.shape, generator=torch.Generator().manual_seed(2)) < 0.3
    mask = rows if per_row else rows[0]
    net, old = twins(lambda: models.mlp(D, (8,), C))
    start = [p.clone() for p in net.parameters()]
    history = rrr.fit_rrr(net, x, y, mask, 3.0, epochs=2, batch_size=16, lr=1e-2, seed=1,
                          weight_decay=1e-3, progress=False)  # fmt: skip

    def terms(model, xb, yb, *ab):
        total, ce, rr = rrr.rrr_loss(model, xb, yb, ab[0] if ab else mask, 3.0)
        return {"loss": total, "ce": ce, "rr": rr}

    extra = (mask,) if per_row else ()
    steps = ref.fit(old, x, y, *extra, epochs=2, batch_size=16, seed=1, loss_fn=terms,
                    optimizer=torch.optim.Adam(old.parameters(), lr=1e-2, weight_decay=1e-3))  # fmt: skip
    assert history.attrs["steps"].to_dict("records") == steps
    assert_same_weights(net, old)
    assert moved(net, start)


@pytest.mark.parametrize("notion", ["baseline", "probabilistic", "robust"])
def test_train_sst_is_the_old_loop_on_sst_loss(notion):
    x, y = data()
    x = x.view(N, 3, 4)
    net, old = twins(lambda: models.DualHeadMLP((3, 4), (8,), C))
    start = [p.clone() for p in net.parameters()]
    kw = {"notion": notion, "xi": 0.5, "steps": 2, "eps": 0.1}
    history = sst.train_sst(net, x, y, epochs=2, lr=1e-2, batch_size=16, seed=3, x_eval=x[:8],
                            y_eval=y[:8], controls=True, **kw)  # evaluation draws apart  # fmt: skip
    generator = torch.Generator().manual_seed(3)

    def terms(model, xb, yb):
        total, ce, faith, size = sst.sst_loss(model, xb, yb, generator=generator, **kw)
        return {"loss": total, "ce": ce, "faith": faith, "size_batch": size}

    steps = ref.fit(old, x, y, epochs=2, batch_size=16, seed=4, loss_fn=terms,
                    optimizer=sst._adam(old, 1e-2))  # fmt: skip
    per_epoch = len(steps) // 2
    for _, row in history.iterrows():
        epoch = int(row["epoch"])
        window = steps[(epoch - 1) * per_epoch : epoch * per_epoch]
        if epoch > 0:  # row 0: the evaluation before training
            assert row["loss"] == sum(t["loss"] for t in window) / len(window)
    assert_same_weights(net, old)
    assert moved(net, start)


# ----------------------------------------------------------------------------- the AND-mask


@pytest.mark.parametrize(
    ("method", "extra"),
    [("and", {"tau": 0.7, "rescale": True}), ("and", {"tau": 0.0}), ("geom", {"tau": 0.5}),
     ("sand", {"tau": 0.3, "k": 4.0}), ("random", {"tau": 1.0}),
     ("random", {"tau": 1.0, "keep": 0.3})],
)  # fmt: skip
def test_fit_and_mask_is_the_old_loop_for_every_method(method, extra):
    g = torch.Generator().manual_seed(0)
    x_envs, y_envs = torch.randn(3, 30, D, generator=g), torch.randint(0, C, (3, 30), generator=g)
    net, old = twins(lambda: models.mlp(D, (8,), C))
    start = [p.clone() for p in net.parameters()]
    kw = {"tau": 0.5, "rescale": False, "k": 10.0, "keep": None} | extra
    history = andmask.fit_and_mask(
        net, F.cross_entropy, x_envs, y_envs, torch.optim.Adam(net.parameters(), lr=1e-2,
        weight_decay=1e-3), steps=6, method=method, batch_per_env=8, eval_every=1, seed=2, **kw,
    )  # fmt: skip
    steps = ref.fit_and_mask(
        old, F.cross_entropy, x_envs, y_envs, torch.optim.Adam(old.parameters(), lr=1e-2,
        weight_decay=1e-3), steps=6, method=method, batch_per_env=8, seed=2, **kw,
    )  # fmt: skip
    columns = list(steps[0])
    assert history[columns].to_dict("records") == steps
    assert history["kept"].tolist() == history[columns[1:]].mean(axis=1).tolist()
    assert_same_weights(net, old)
    assert moved(net, start)


# ----------------------------------------------------------------------------- the benchmark


@pytest.mark.parametrize(
    ("method", "hp", "decay"),
    [("ERM", {}, "decoupled"), ("AND-mask", {"tau": 0.6}, "coupled"),
     ("AND-mask, random", {"tau": 1.0, "mask_seed": 3}, "decoupled"),
     ("SAND-mask", {"tau": 0.4, "k": 5.0}, "decoupled"),
     ("IRMv1", {"irm_weight": 20.0, "irm_anneal": 2, "irm_start_weight": 1.0}, "decoupled"),
     ("RRR", {"l2_grads": 4.0}, "coupled")],
)  # fmt: skip
def test_the_benchmarks_trainer_is_the_old_loop_for_every_method(method, hp, decay):
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(2, 3, 24, 4, 4, generator=g), torch.randint(0, 10, (2, 3, 24), generator=g)
    net, old = twins(lambda: ensembles.MLPs(16, (8,), 10, [0, 1]))
    start = [p.clone() for p in net.parameters()]
    if method == "RRR":
        hp = hp | {"annotations": torch.rand(2, 4, 4, generator=g) < 0.5}
    history = ensembles.fit(method, net, ensembles.stacked_batches(x, y, 8, seed=0), steps=5,
                            lr=1e-2, weight_decay=1e-2, decay=decay, log_every=1, **hp)  # fmt: skip
    terms = ref.ensembles_fit(
        ensembles.UPDATES[method], old, ensembles.stacked_batches(x, y, 8, seed=0),
        ensembles._hp_tensors(method, 2, hp, "cpu"), steps=5, lr=1e-2, weight_decay=1e-2,
        decay=decay, reset_at=hp.get("irm_anneal"),
    )  # fmt: skip
    assert history[list(terms[0])].to_dict("records") == terms
    assert_same_weights(net, old)
    assert moved(net, start)


# ----------------------------------------------------------------------------- grokking


@pytest.mark.parametrize("loss", ["softmax", "stablemax"])
def test_run_grokking_trains_as_the_registered_loop(loss):
    p, fracs, seeds, wds = 13, [0.5, 0.4], [0, 1], [1.0, 0.3]
    history, net = grokking.run_grokking(
        p, weight_decay=wds, train_frac=fracs, seed=seeds, steps=30, eval_every=10, loss=loss,
        return_model=True,
    )  # fmt: skip
    a, b, y = grokking.modular_arithmetic(p, "add")
    split = torch.stack([grokking.train_split(p, f, s) for f, s in zip(fracs, seeds, strict=True)])
    idx = torch.zeros(2, int(split.sum(1).max()), dtype=torch.long)
    weight = torch.zeros(idx.shape)
    for r in range(2):
        rows = split[r].nonzero().squeeze(1)
        idx[r, : len(rows)], weight[r, : len(rows)] = rows, 1.0 / len(rows)
    old = models.GrokMLP(p, 32, 64, seeds=seeds, init_scale=[1.0, 1.0])
    start = [p.clone() for p in old.parameters()]
    losses = ref.grokking_steps(old, a[idx], b[idx], y[idx], weight, loss, steps=30, lr=1e-2,
                                betas=(0.9, 0.98), weight_decay=wds)  # fmt: skip
    assert_same_weights(net, old)
    assert moved(old, start) and losses[-1] < losses[0]  # the registered loop trained
    assert history["step"].max() == 30


def test_train_sst_passes_on_exactly_the_arguments_of_sst_loss():
    import inspect

    own = {"model", "x", "y", "generator"}
    assert set(inspect.signature(sst.sst_loss).parameters) - own == set(sst.SST_LOSS_ARGUMENTS)
