"""Bad input, tried as a user would: a clear error that names the argument, or the right answer.

The table below names each call and what it must do: raise an error whose message names the
argument (and says what was expected), or return the right answer. Each row was reproduced on the
package first, failing, and passes since its fix.

The tests after the table were each written for one case that failed before the package was made
safe (a silent broadcast, a mode left switched, NaN flowing through, a raw torch error).
"""

import math
import re
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hvnotes
from hvnotes import (
    algorithms,
    andmask,
    checks,
    consistency,
    datasets,
    ensembles,
    models,
    phenomena,
    probes,
    rrr,
    seeding,
    sst,
    train,
)

NAN, INF = math.nan, math.inf


class Raises(NamedTuple):
    """The call must raise ``error`` with a message matching ``names`` (the argument's name)."""

    error: type[Exception] | tuple[type[Exception], ...]
    names: str


class Returns(NamedTuple):
    """The call must return ``out`` with ``check(out)`` true: ``what`` says what is right."""

    check: Callable[[object], bool]
    what: str


class Either(NamedTuple):
    """Either an error naming the argument, or the right answer (a fix may choose)."""

    raises: Raises
    returns: Returns


class Case(NamedTuple):
    call: str
    run: Callable[[], object]
    expect: Raises | Returns | Either


# ----------------------------------------------------------------------------- small objects


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def net(seed=0, inputs=4, out=3):
    """``models.mlp(inputs, (6,), out)``, initialised without touching the global RNG."""
    with seeding.torch_seed(seed):
        return models.mlp(inputs, (6,), out)


def xy(n=6, seed=0):
    g = gen(seed)
    return torch.rand(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def stacked(seed=0, envs=2, per_env=3):
    g = gen(seed)
    return torch.rand(envs, per_env, 4, generator=g), torch.randint(
        0, 3, (envs, per_env), generator=g
    )


def with_nan(t, value=NAN):
    t = t.clone()
    t.view(-1)[1] = value
    return t


def nan_weights():
    model = net()
    with torch.no_grad():
        model[1].weight.fill_(NAN)
    return model


def env_grads(seed=0, envs=4):
    return torch.randn(envs, 7, generator=gen(seed))


def images(n=5):
    return torch.rand(n, 3, 4, generator=gen(1))


def image_net():
    return net(inputs=12)


def keep_all(x):
    return torch.ones_like(x, dtype=torch.bool)


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)


def and_mask_step(xs, ys, loss_fn=F.cross_entropy, model=None, **kw):
    """One ``andmask.and_mask_step`` of a fresh network (tau = 0.5) with SGD over it."""
    model = net() if model is None else model
    return andmask.and_mask_step(model, loss_fn, xs, ys, sgd(model), kw.pop("tau", 0.5), **kw)


def batchnorm_net():
    with seeding.torch_seed(0):
        return nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Linear(5, 3)).train()


def constant_net():
    """Predicts class 0 for every input."""
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([1.0, 0.0, 0.0]))
    return model


def one_output_net():
    with seeding.torch_seed(0):
        return nn.Sequential(nn.Linear(4, 1), nn.Flatten(0))


class Wrapped(nn.Module):
    """The same network behind a Module of its own (the AND-mask's other code path)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def sum_loss(out, target):
    return F.cross_entropy(out, target, reduction="sum")


def and_mask_step_change(model, loss_fn=sum_loss):
    before = [p.detach().clone() for p in model.parameters()]
    xs, ys = stacked()  # two environments: tau = 0.5 keeps the components both agree on
    andmask.and_mask_step(model, loss_fn, xs, ys, sgd(model), tau=0.5)
    return torch.cat(
        [(p.detach() - b).flatten() for p, b in zip(model.parameters(), before, strict=True)]
    )


def sequential_vs_wrapped():
    """The update of one and_mask_step on an nn.Sequential and on the same network wrapped."""
    return and_mask_step_change(net()), and_mask_step_change(Wrapped(net()))


def tau_in_float32():
    g = torch.tensor([[1.0], [1.0], [1.0], [1.0], [-1.0]])  # 4 of 5 agree: |mean sign| = 0.6
    tau32 = torch.linspace(0, 1, 6)[3].item()  # 0.6 as float32 gives it: 0.6000000238
    return andmask.and_mask(g, tau32), andmask.and_mask(g, 0.6)


def fit_mode(model):
    x, y = xy()
    train.fit(model, x, y, epochs=1, progress=False)
    return model.training


def fit_and_mask_mode():
    model = net().eval()
    xs, ys = stacked()
    andmask.fit_and_mask(model, F.cross_entropy, xs, ys, sgd(model), steps=1, tau=0.0,
                         batch_per_env=3)  # fmt: skip
    return model.training


def rng_after(call):
    """Whether torch's global stream is where it was: ``call`` between seeding and drawing."""
    torch.manual_seed(11)
    call()
    after = torch.rand(3)
    torch.manual_seed(11)
    return torch.equal(after, torch.rand(3))


def drop_one_reference(model, x_row, keep_row):
    from hvnotes.sufficiency import drop_one_redundancy

    return drop_one_redundancy(model, x_row[None], keep_row[None])[0].item()


def rrr_checker_crashing_in_its_setup():
    """check_rrr_penalty when building its seeded model fails: the RNG must be restored."""
    original = models.mlp

    def broken(*args, **kwargs):
        torch.rand(5)  # draws from the global stream, then fails
        raise RuntimeError("no model today")

    models.mlp = broken
    try:
        torch.manual_seed(5)
        before = torch.random.get_rng_state()
        with pytest.raises(RuntimeError, match="no model today"):
            checks.check_rrr_penalty(lambda *a: 0.0)
        return torch.equal(before, torch.random.get_rng_state())
    finally:
        models.mlp = original


def fae_checks_before_training(**kw):
    """find_another_explanation with a bad argument: it must raise before it trains round 0."""
    built = []
    x, y = xy(8)

    def make_model():
        built.append(1)
        return net()

    try:
        return rrr.find_another_explanation(make_model, x, y, rounds=2, epochs=1, progress=False,
                                            **({"l2_grads": 1.0} | kw))  # fmt: skip
    finally:
        assert not built, "round 0 was trained before the argument was checked"


def standardised():
    return torch.randn(6, 4, generator=gen(2)) * 2  # like iris_cancer and spirals: about [-4, 4]


def pgd_distance():
    x = standardised()
    model = net()
    z = sst.pgd_complement(model, x, torch.zeros_like(x, dtype=torch.bool), train.predict(model, x),
                           eps=0.1, alpha=0.05, steps=3)  # fmt: skip
    return (z - x).abs().max().item()


def probabilistic_fill():
    x = standardised()
    z = sst.complement(x, torch.zeros_like(x, dtype=torch.bool), "probabilistic", generator=gen())
    return z, x


def greedy(**kw):
    return sst.greedy_sis(net(), xy()[0][:1], **kw)[0]


def temporal(**kw):
    return andmask.TemporalAndMaskAdam(net().parameters(), **kw)


H = np.array([np.diag([0.05, 1.0]), np.diag([1.0, 0.05])])
X, Y = xy()
XS, YS = stacked()
IMAGES = images()
LABELS = torch.randint(0, 3, (5,), generator=gen(3))
A_NONE = torch.zeros(4, dtype=torch.bool)


TABLE = [
    # ---- NaN and inf: an error, never a silent 0, NaN or full mask
    Case("andmask.and_mask(env_grads with NaN, 1.0)",
         lambda: andmask.and_mask(with_nan(env_grads()), 1.0),
         Raises(ValueError, r"env_grads.*(NaN|finite)")),
    Case("andmask.masked_gradient(env_grads with NaN, 0.5)",
         lambda: andmask.masked_gradient(with_nan(env_grads()), 0.5),
         Raises(ValueError, r"env_grads.*(NaN|finite)")),
    Case("andmask.sand_mask(env_grads with NaN, 0.5, 10)",
         lambda: andmask.sand_mask(with_nan(env_grads()), 0.5, 10.0),
         Raises(ValueError, r"env_grads holds NaN")),
    Case("andmask.env_gradients(model, ce, xs with NaN, ys)",
         lambda: andmask.env_gradients(net(), F.cross_entropy, with_nan(XS), YS),
         Raises(ValueError, r"xs.*(NaN|finite)")),
    Case("andmask.and_mask_step(model, ce, xs with NaN, ...)",
         lambda: and_mask_step(with_nan(XS), YS),
         Raises(ValueError, r"xs holds NaN")),
    Case("rrr.input_gradients(model, x with NaN)",
         lambda: rrr.input_gradients(net(), with_nan(X)),
         Raises(ValueError, r"x.*(NaN|finite)")),
    Case("rrr.rrr_loss(model, x with NaN, y, a, 1.0)",
         lambda: rrr.rrr_loss(net(), with_nan(X), Y, A_NONE, 1.0),
         Raises(ValueError, r"x.*(NaN|finite)")),
    Case("rrr.rrr_loss(..., l2_grads=nan)",
         lambda: rrr.rrr_loss(net(), X, Y, A_NONE, NAN),
         Raises(ValueError, r"l2_grads")),
    Case("rrr.gradient_mass(grads with NaN, region)",
         lambda: rrr.gradient_mass(with_nan(X), A_NONE),
         Raises(ValueError, r"grads.*(NaN|finite)")),
    Case("rrr.largest_gradient_mask(grads full of NaN)",
         lambda: rrr.largest_gradient_mask(torch.full((3, 4), NAN)),
         Raises(ValueError, r"grads.*(NaN|finite)")),
    Case("train.predict(model with NaN weights, x)",
         lambda: train.predict(nan_weights(), X),
         Raises(ValueError, r"model returned NaN or inf logits")),
    Case("train.fit(model, x with NaN, y)",
         lambda: train.fit(net(), with_nan(X), Y, progress=False),
         Raises(ValueError, r"x holds NaN")),
    Case("train.fit(..., lr=nan)",
         lambda: train.fit(net(), X, Y, lr=NAN, progress=False),
         Raises(ValueError, r"lr must be a finite number > 0")),
    Case("sst.sufficiency_rate(model with NaN weights, x, empty keep, 'baseline')",
         lambda: sst.sufficiency_rate(nan_weights(), X, torch.zeros_like(X, dtype=torch.bool),
                                      "baseline"),
         Raises(ValueError, r"model.*(NaN|finite)")),
    Case("sst.sufficiency_rate(..., 'probabilistic', pool with NaN)",
         lambda: sst.sufficiency_rate(net(), X, ~keep_all(X), "probabilistic",
                                      pool=torch.full((3, 4), NAN)),
         Raises(ValueError, r"pool.*(NaN|finite)")),
    Case("sst.sufficiency_rate(..., baseline=nan)",
         lambda: sst.sufficiency_rate(net(), X, keep_all(X), "baseline", baseline=NAN),
         Raises(ValueError, r"baseline must be finite")),
    Case("sst.sst_loss(dual, x, y, xi=nan)",
         lambda: sst.sst_loss(models.DualHeadMLP((4,), (3,), 3), X, Y, xi=NAN),
         Raises(ValueError, r"^xi must be a finite number")),
    Case("sst.sst_explain(dual, x, tau=nan)",
         lambda: sst.sst_explain(models.DualHeadMLP((4,), (3,), 3), X, NAN),
         Raises(ValueError, r"^tau must be a finite number")),
    Case("andmask.TemporalAndMaskAdam(params, lr=inf)",
         lambda: temporal(lr=INF), Raises(ValueError, r"^lr must be a finite number")),
    Case("andmask.TemporalAndMaskAdam(params, weight_decay=inf)",
         lambda: temporal(weight_decay=INF),
         Raises(ValueError, r"^weight_decay must be a finite number")),
    Case("andmask.TemporalAndMaskAdam(params, eps=inf)",
         lambda: temporal(eps=INF), Raises(ValueError, r"^eps must be a finite number")),
    Case("andmask.TemporalAndMaskAdam(params, tau=nan)",
         lambda: temporal(tau=NAN), Raises(ValueError, r"^tau must be a finite number")),
    Case("sst.greedy_sis(model, x, min_rate=2)",
         lambda: greedy(min_rate=2.0), Raises(ValueError, r"min_rate")),
    Case("sst.greedy_sis(model, x, min_rate=nan)",
         lambda: greedy(min_rate=NAN), Raises(ValueError, r"min_rate")),
    Case("sst.greedy_sis(model, x, timeout=nan)",
         lambda: greedy(timeout=NAN), Raises(ValueError, r"timeout")),
    Case("sst.topk_search(model, x, attributions, min_rate=2)",
         lambda: sst.topk_search(net(), X, torch.rand(6, 4, generator=gen()), min_rate=2.0),
         Raises(ValueError, r"min_rate")),
    Case("datasets.linear_toy(shared=nan)",
         lambda: datasets.linear_toy(shared=NAN), Raises(ValueError, r"shared")),
    Case("datasets.linear_toy(scale=0)",
         lambda: datasets.linear_toy(scale=0.0), Raises(ValueError, r"scale")),
    Case("datasets.spirals(revolutions=inf)",
         lambda: datasets.spirals(n_envs=2, n_per_env=4, shortcut_dims=2, n_test=4,
                                  revolutions=INF),
         Raises(ValueError, r"revolutions")),
    Case("datasets.shortcut_digits(brightness=inf)",
         lambda: datasets.shortcut_digits(brightness=INF),
         Raises(ValueError, r"brightness must be a finite number > 0")),
    Case("datasets.add_label_tab(images, tab, brightness=inf)",
         lambda: datasets.add_label_tab(IMAGES, torch.tensor([0, 1, 2, 3, 4]), INF),
         Raises(ValueError, r"brightness must be a finite number > 0")),
    Case("models.GrokMLP(7, init_scale=nan)",
         lambda: models.GrokMLP(7, 4, 4, init_scale=NAN),
         Raises(ValueError, r"init_scale must be a finite number > 0")),
    Case("phenomena.run_grokking(lr=inf)",
         lambda: phenomena.run_grokking(13, steps=1, lr=INF),
         Raises(ValueError, r"lr must be a finite number > 0")),
    Case("consistency.gradient_descent(loss, theta0, steps, lr=inf)",
         lambda: consistency.gradient_descent(lambda t: consistency.quadratic_losses(t, H),
                                              torch.ones(3, 2), steps=2, lr=INF),
         Raises(ValueError, r"lr")),
    Case("probes.softmax_collapse_rate(logits with NaN, y)",
         lambda: probes.softmax_collapse_rate(torch.full((3, 5), NAN), torch.tensor([0, 1, 2])),
         Raises(ValueError, r"logits.*(NaN|finite)")),
    # ---- masks: the exact shape or one mask per row, never a silent broadcast
    Case("rrr.rrr_loss(model, x, y, annotations (N, 1), 1.0)",
         lambda: rrr.rrr_loss(net(), X, Y, torch.ones(6, 1, dtype=torch.bool), 1.0),
         Raises(ValueError, r"annotations")),
    Case("sst.complement(x (N, H, W), keep (N, 1, 1), 'baseline')",
         lambda: sst.complement(IMAGES, torch.ones(5, 1, 1, dtype=torch.bool), "baseline"),
         Raises(ValueError, r"keep")),
    Case("sst.complement(x (N, H, W), keep (W,), 'baseline')",
         lambda: sst.complement(IMAGES, torch.ones(4, dtype=torch.bool), "baseline"),
         Raises(ValueError, r"keep")),
    Case("sst.sufficiency_rate(model, x (N, H, W), keep (N, 1, 1), 'baseline')",
         lambda: sst.sufficiency_rate(image_net(), IMAGES, torch.ones(5, 1, 1, dtype=torch.bool),
                                      "baseline"),
         Raises(ValueError, r"keep")),
    Case("sst.sufficiency_rate(model, x (N, H, W), keep (W,), 'baseline')",
         lambda: sst.sufficiency_rate(image_net(), IMAGES, torch.ones(4, dtype=torch.bool),
                                      "baseline"),
         Raises(ValueError, r"keep")),
    Case("sst.complement(x, keep of floats, 'baseline')",
         lambda: sst.complement(X, keep_all(X).float(), "baseline"),
         Raises(TypeError, r"keep must be a bool Tensor")),
    # ---- wrong numbers
    Case("sst.pgd_complement(model, standardised x, keep nothing, eps=0.1, ...)",
         pgd_distance,
         Either(Raises(ValueError, r"bounds"),
                Returns(lambda d: d <= 0.1 + 1e-6, "max |z - x| <= eps"))),
    Case("sst.complement(standardised x, keep nothing, 'probabilistic')",
         probabilistic_fill,
         Either(Raises(ValueError, r"bounds"),
                Returns(lambda zx: zx[0].min() < 0 and zx[1].min() <= zx[0].min()
                        and zx[0].max() <= zx[1].max(),
                        "a fill from the data's range, not U[0, 1)"))),
    Case("andmask.and_mask(env_grads, tau = 0.6 in float32)",
         tau_in_float32,
         Returns(lambda masks: torch.equal(*masks) and masks[1].item() == 1.0,
                 "the same mask as tau=0.6: the component kept")),
    Case("andmask.and_mask_step(nn.Sequential vs wrapped Module, reduction='sum' loss)",
         sequential_vs_wrapped,
         Either(Raises(ValueError, r"loss_fn"),
                Returns(lambda ab: ab[0].abs().sum() > 0 and torch.allclose(*ab, atol=1e-6),
                        "one update, both paths"))),
    Case("consistency.quadratic_inconsistency(H, torch.tensor(0.01))",
         lambda: consistency.quadratic_inconsistency(H, torch.tensor(0.01)),
         Returns(lambda v: abs(v - 0.2) < 1e-6, "0.2 (a 0-d tensor is a number)")),
    Case("consistency.quadratic_inconsistency(H, np.float32(0.01))",
         lambda: consistency.quadratic_inconsistency(H, np.float32(0.01)),
         Returns(lambda v: abs(v - 0.2) < 1e-6, "0.2")),
    # ---- state: modes restored, global random streams untouched
    Case("train.fit(model.eval(), x, y)",
         lambda: fit_mode(net().eval()), Returns(lambda training: not training, "still in eval")),
    Case("train.fit(model.train(), x, y)",
         lambda: fit_mode(net().train()), Returns(lambda training: training, "still in train")),
    Case("andmask.fit_and_mask(model.eval(), ...)",
         fit_and_mask_mode, Returns(lambda training: not training, "still in eval")),
    Case("checks.check_drop_one(fn): the caller's torch stream afterwards",
         lambda: rng_after(lambda: checks.check_drop_one(drop_one_reference)),
         Returns(lambda same: same, "untouched (it used to reseed with 7)")),
    Case("checks.check_rrr_penalty(fn) whose setup raises: the torch stream afterwards",
         rrr_checker_crashing_in_its_setup,
         Returns(lambda same: same, "restored, also on the error")),
    Case("checks.run_checks(name, [a thunk, not a pair])",
         lambda: checks.run_checks("x", [lambda: None]), Raises(TypeError, r"cases\[0\]")),
    Case("checks.run_checks(name, [])",
         lambda: checks.run_checks("x", []), Raises(ValueError, r"cases is empty")),
    # ---- labels: 1-D integer class indices in range
    Case("train.fit(model, x, y (N, 1))",
         lambda: train.fit(net(), X, Y[:, None], progress=False),
         Raises(ValueError, r"y must have 1 dimension")),
    Case("train.fit(model, x, y float)",
         lambda: train.fit(net(), X, Y.float(), progress=False),
         Raises(TypeError, r"y must hold integer class indices")),
    Case("train.fit(model, x, y out of range)",
         lambda: train.fit(net(), X, Y + 7, progress=False),
         Raises(ValueError, r"y must hold class indices \[0, 3\)")),
    Case("train.fit(..., eval_sets={'val': x})",
         lambda: train.fit(net(), X, Y, eval_sets={"val": X}, progress=False),
         Raises(TypeError, r"eval_sets\['val'\] must be a pair")),
    Case("train.accuracy(model, x, y (N, 1))",
         lambda: train.accuracy(net(), X, Y[:, None]), Raises(ValueError, r"y must have 1 dim")),
    Case("train.accuracy(model, x, y float)",
         lambda: train.accuracy(net(), X, Y.float()), Raises(TypeError, r"y must hold integer")),
    Case("train.accuracy(model, x, y out of range)",
         lambda: train.accuracy(net(), X, Y + 7), Raises(ValueError, r"y must hold class")),
    Case("andmask.and_mask_step(model, ce, xs, ys float, ...)",
         lambda: and_mask_step(XS, YS.float()),
         Raises(TypeError, r"^ys must hold integer class indices")),
    Case("andmask.and_mask_step(model, ce, xs, ys out of range, ...)",
         lambda: and_mask_step(XS, YS + 7),
         Raises(ValueError, r"^ys must hold class indices \[0, 3\)")),
    Case("rrr.rrr_loss(model, x, y float, a, 1.0)",
         lambda: rrr.rrr_loss(net(), X, Y.float(), A_NONE, 1.0),
         Raises(TypeError, r"^y must hold integer class indices")),
    Case("sst.pgd_complement(model, x, keep, target out of range, ...)",
         lambda: sst.pgd_complement(net(), X, ~keep_all(X), Y + 5, 0.1, 0.01, 2),
         Raises(ValueError, r"target")),
    Case("probes.stablemax_cross_entropy(logits, y out of range)",
         lambda: probes.stablemax_cross_entropy(torch.rand(3, 5), torch.tensor([0, 1, 9])),
         Raises(ValueError, r"^y must hold class indices \[0, 5\)")),
    Case("probes.softmax_collapse_rate(logits, y out of range)",
         lambda: probes.softmax_collapse_rate(torch.rand(3, 5), torch.tensor([0, 1, 9])),
         Raises(ValueError, r"y must hold class indices")),
    # ---- input dtype and the model contract
    Case("train.predict(model, x float64)",
         lambda: train.predict(net(), X.double()), Raises(TypeError, r"float64.*float32")),
    Case("andmask.env_gradients(model, ce, xs float64, ys)",
         lambda: andmask.env_gradients(net(), F.cross_entropy, XS.double(), YS),
         Raises(TypeError, r"xs.*float64")),
    Case("andmask.and_mask_step(model, ce, xs float64, ...)",
         lambda: and_mask_step(XS.double(), YS),
         Raises(TypeError, r"xs.*float64")),
    Case("train.fit(a plain callable, x, y)",
         lambda: train.fit(lambda t: net()(t), X, Y, progress=False),
         Raises(TypeError, r"model must be a torch.nn.Module")),
    Case("andmask.env_gradients(a plain callable, ce, xs, ys)",
         lambda: andmask.env_gradients(lambda t: net()(t), F.cross_entropy, XS, YS),
         Raises(TypeError, r"model must be a torch.nn.Module")),
    Case("andmask.env_gradients(BatchNorm model in train mode, ...)",
         lambda: andmask.env_gradients(batchnorm_net(), F.cross_entropy, XS, YS),
         Raises(ValueError, r"BatchNorm")),
    Case("rrr.input_gradients(BatchNorm model in train mode, x)",
         lambda: rrr.input_gradients(batchnorm_net(), X),
         Raises(ValueError, r"BatchNorm")),
    Case("train.predict(a model with one output per row, x)",
         lambda: train.predict(one_output_net(), X), Raises(ValueError, r"logits of shape")),
    Case("train.fit(a model with one output per row, x, y)",
         lambda: train.fit(one_output_net(), X, Y, progress=False),
         Raises(ValueError, r"logits of shape")),
    Case("rrr.input_gradients(a model with one output per row, x)",
         lambda: rrr.input_gradients(one_output_net(), X),
         Raises(ValueError, r"logits")),
    Case("sst.sst_loss(a plain MLP, x, y)",
         lambda: sst.sst_loss(net(), X, Y), Raises(TypeError, r"logits_and_scores")),
    Case("models.GrokMLP(7)(a out of range, b)",
         lambda: models.GrokMLP(7, 4, 4)(torch.tensor([9]), torch.tensor([1])),
         Raises(ValueError, r"a must hold tokens in \[0, 7\)")),
    Case("models.GrokMLP(7)(a float, b float)",
         lambda: models.GrokMLP(7, 4, 4)(torch.tensor([1.0]), torch.tensor([1.0])),
         Raises(TypeError, r"a must be an integer tensor")),
    # ---- small arguments
    Case("train.predict(model, x, batch_size=0)",
         lambda: train.predict(net(), X, batch_size=0), Raises(ValueError, r"batch_size")),
    Case("train.fit(model, x, y, patience=2, monitor='acc_val') without eval set 'val'",
         lambda: train.fit(net(), X, Y, patience=2, monitor="acc_val", progress=False),
         Raises(ValueError, r"monitor='acc_val' is not a column")),
    Case("train.run(step, 2 batches, steps=3)",
         lambda: train.run(lambda a: {"a": 1.0}, [(X,)] * 2, steps=3, progress=False),
         Raises(ValueError, r"batches ran out after 2")),
    Case("train.fit(model, x[:0], y[:0])",
         lambda: train.fit(net(), X[:0], Y[:0], progress=False), Raises(ValueError, r"x must hold")),
    Case("rrr.rrr_loss(model, x[:0], y[:0], a, 1.0)",
         lambda: rrr.rrr_loss(net(), X[:0], Y[:0], A_NONE, 1.0),
         Raises(ValueError, r"x.*(row|empty)")),
    Case("rrr.rr_ce_ratio(..., batch_size=0)",
         lambda: rrr.rr_ce_ratio(net(), X, Y, A_NONE, 1.0, batch_size=0),
         Raises(ValueError, r"batch_size")),
    Case("rrr.find_another_explanation(..., cutoff=1.5): before round 0 trains",
         lambda: fae_checks_before_training(cutoff=1.5), Raises(ValueError, r"cutoff")),
    Case("rrr.find_another_explanation(..., l2_grads=np.float32(1.0))",
         lambda: len(rrr.find_another_explanation(lambda: net(), *xy(8), rounds=1,
                                                  l2_grads=np.float32(1.0), epochs=1,
                                                  progress=False)),
         Returns(lambda n: n == 1, "one round")),
    Case("rrr.find_another_explanation(..., rounds=np.int64(1))",
         lambda: len(rrr.find_another_explanation(lambda: net(), *xy(8), rounds=np.int64(1),
                                                  l2_grads=1.0, epochs=1, progress=False)),
         Returns(lambda n: n == 1, "one round")),
    Case("rrr.largest_gradient_mask(grads, cutoff=np.float32(0.5))",
         lambda: rrr.largest_gradient_mask(torch.randn(3, 4, generator=gen()), np.float32(0.5)),
         Returns(lambda m: m.shape == (3, 4), "a mask")),
    Case("andmask.and_mask(env_grads, torch.tensor(0.5))",
         lambda: andmask.and_mask(env_grads(), torch.tensor(0.5)),
         Returns(lambda m: torch.equal(m, andmask.and_mask(env_grads(), 0.5)), "tau = 0.5")),
    Case("andmask.and_mask(env_grads, tau=1.5)",
         lambda: andmask.and_mask(env_grads(), 1.5), Raises(ValueError, r"tau must be")),
    Case("andmask.keep_probability(np.int64(4), 0.5)",
         lambda: andmask.keep_probability(np.int64(4), 0.5),
         Returns(lambda p: abs(p - 0.625) < 1e-12, "0.625")),
    Case("andmask.pass_probability(4, 0.5, np.float32(0.6))",
         lambda: andmask.pass_probability(4, 0.5, np.float32(0.6)),
         Returns(lambda p: 0 < p < 1, "a probability")),
    Case("andmask.and_mask_step(..., rescale='no')",
         lambda: and_mask_step(XS, YS, rescale="no"),
         Raises(TypeError, r"rescale")),
    Case("sst.sufficiency_rate(..., 'probabilistic', n_draws=np.int64(2))",
         lambda: sst.sufficiency_rate(net(), X, keep_all(X), "probabilistic",
                                      n_draws=np.int64(2)),
         Returns(lambda r: r == 1.0, "1.0 (everything kept)")),
    Case("sst.sst_loss(dual, x, y, tau=2)",
         lambda: sst.sst_loss(models.DualHeadMLP((4,), (3,), 3), X, Y, tau=2.0),
         Raises(ValueError, r"tau")),
    Case("sst.train_sst(dual, x, y, x_eval=x) without y_eval",
         lambda: sst.train_sst(models.DualHeadMLP((4,), (3,), 3), X, Y, epochs=1, x_eval=X),
         Raises((TypeError, ValueError), r"y_eval")),
    Case("sufficiency.mask_transplant(model, x, keep) when no pair of rows differs",
         lambda: sst.mask_transplant(constant_net(), X, keep_all(X)),
         Either(Raises(ValueError, r"(pair|class)"),
                Returns(lambda out: out["pairs"] == 0, "zero pairs"))),
    # ---- numbers a user passes: NumPy scalars and 0-d tensors are numbers
    Case("datasets.load_digits(test_fraction=np.float32(0.25))",
         lambda: len(datasets.load_digits(test_fraction=np.float32(0.25)).y_test),
         Returns(lambda n: n == 450, "450 test digits")),
    Case("datasets.shortcut_digits(density=np.float32(0.5))",
         lambda: datasets.shortcut_digits(3, density=np.float32(0.5)).x_train.shape,
         Returns(lambda s: s[0] == 3, "3 environments")),
    Case("models.mlp(np.int64(4), (np.int64(6),), 3)",
         lambda: models.mlp(np.int64(4), (np.int64(6),), 3)(X).shape,
         Returns(lambda s: s == (6, 3), "logits (6, 3)")),
    Case("models.mlp(4, hidden=6)",
         lambda: models.mlp(4, 6), Raises(ValueError, r"hidden must be a sequence")),
    Case("models.mlp(True)",
         lambda: models.mlp(True), Raises(ValueError, r"in_features must be an int")),
    Case("models.GrokMLP(7, init_scale=np.float32(2.0))",
         lambda: models.GrokMLP(7, 4, 4, init_scale=np.float32(2.0)).n_models,
         Returns(lambda k: k == 1, "one copy")),
    Case("hvnotes.setup(torch.tensor(1))",
         lambda: (hvnotes.setup(torch.tensor(1)), hvnotes.base_seed())[1],
         Returns(lambda b: b == 1, "base seed 1")),
    Case("seeding.generator(0, device='nope')",
         lambda: seeding.generator(0, device="nope"), Raises(ValueError, r"device")),
    Case("datasets.add_label_tab(images, tab of floats)",
         lambda: datasets.add_label_tab(IMAGES, torch.tensor([0.5, 1.7, 2.0, 3.0, 4.0])),
         Raises(TypeError, r"tab must be an integer tensor")),
    Case("datasets.swatch_shade(torch.tensor([12]))",
         lambda: datasets.swatch_shade(torch.tensor([12])), Raises(ValueError, r"digit must")),
    Case("datasets.iris_cancer(standardize='no')",
         lambda: datasets.iris_cancer(standardize="no"), Raises(TypeError, r"standardize")),
    # ---- algorithms: hyper-parameters checked when built, before any training
    Case("algorithms.ANDMask(model, {'tau': 1.5})",
         lambda: algorithms.ANDMask(net(), {"tau": 1.5}), Raises(ValueError, r"tau must be")),
    Case("algorithms.SST(dual, {'pgd_steps': 2.5})",
         lambda: algorithms.SST(models.DualHeadMLP((4,), (3,), 3), {"pgd_steps": 2.5}),
         Raises(TypeError, r"pgd_steps must be an int")),
    Case("algorithms.ERM(model).update(x, y (N, 1))",
         lambda: algorithms.ERM(net()).update(X, Y[:, None]), Raises(ValueError, r"y must have")),
    Case("ensembles.fit('ERM', models, batches, steps=1, lr=inf)",
         lambda: ensembles.fit("ERM", ensembles.MLPs(16, (4,), 3, [0, 1]),
                               iter([(torch.rand(2, 2, 3, 4, 4), torch.randint(0, 3, (2, 2, 3)))]),
                               steps=1, lr=INF),
         Raises(ValueError, r"lr must be a finite number > 0")),
    # ---- trainers: arguments named as the caller wrote them, before any training
    Case("sst.train_sst(dual, x, y, weight_decay=0.1)",
         lambda: sst.train_sst(models.DualHeadMLP((4,), (3,), 3), X, Y, weight_decay=0.1),
         Raises(TypeError, r"train_sst passes .* to sst_loss; got \['weight_decay'\]")),
    Case("sst.train_sst(dual, x, y, steps=2.5)",
         lambda: sst.train_sst(models.DualHeadMLP((4,), (3,), 3), X, Y, notion="robust",
                               steps=2.5),
         Raises(TypeError, r"^steps must be an int")),
    Case("train.fit(model, x, y, loss_fn returning a vector)",
         lambda: train.fit(net(), X, Y, loss_fn=lambda m, x, y: F.cross_entropy(m(x), y,
                                                                        reduction="none"),
                           progress=False),
         Raises(ValueError, r"^loss_fn must return a scalar loss")),
    Case("train.fit(model, x, y, loss_fn returning a dict without 'loss')",
         lambda: train.fit(net(), X, Y, loss_fn=lambda m, x, y: {"ce": F.cross_entropy(m(x), y)},
                           progress=False),
         Raises(ValueError, r"^a loss_fn that returns a dict must name 'loss'")),
    Case("algorithms.ERM(frozen model)",
         lambda: algorithms.ERM(net().requires_grad_(False)),
         Raises(ValueError, r"^network has no trainable parameters")),
    Case("ensembles.fit('SAND-mask', ..., k=nan)",
         lambda: ensembles.fit("SAND-mask", ensembles.MLPs(16, (4,), 3, [0, 1]),
                               iter([(torch.rand(2, 2, 3, 4, 4), torch.randint(0, 3, (2, 2, 3)))]),
                               steps=1, lr=0.01, k=NAN),
         Raises(ValueError, r"^k must be finite and in \(0.0, inf\]")),
    Case("ensembles.fit('AND-mask', ..., tau=1.5)",
         lambda: ensembles.fit("AND-mask", ensembles.MLPs(16, (4,), 3, [0, 1]),
                               iter([(torch.rand(2, 2, 3, 4, 4), torch.randint(0, 3, (2, 2, 3)))]),
                               steps=1, lr=0.01, tau=1.5),
         Raises(ValueError, r"^tau must be finite and in \[0.0, 1.0\]")),
]  # fmt: skip


@pytest.mark.parametrize("case", [pytest.param(c, id=c.call) for c in TABLE])
def test_bad_input(case: Case):
    expect = case.expect
    if isinstance(expect, Raises):
        with pytest.raises(expect.error, match=expect.names):
            case.run()
        return
    if isinstance(expect, Either):
        try:
            out = case.run()
        except expect.raises.error as err:
            assert re.search(expect.raises.names, str(err)), f"{case.call}: {err}"
            return
        expect = expect.returns
    else:
        out = case.run()
    assert expect.check(out), f"{case.call}: expected {expect.what}, got {out!r}"


def test_the_table_covers_the_issue_with_one_row_per_call():
    assert len(TABLE) >= 100
    assert len({c.call for c in TABLE}) == len(TABLE), "every row names a different call"


# ----------------------------------------------------------------------------- single cases


def tiny_classifier(seed=0):
    torch.manual_seed(seed)
    return models.mlp(4, (6,), 3)


def perfect_model():
    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    return model


# ----------------------------------------------------------------------------- shapes


def test_accuracy_rejects_column_labels_instead_of_broadcasting():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1])
    assert train.accuracy(perfect_model(), x, y) == 1.0
    with pytest.raises(ValueError, match="y must have 1 dimension"):
        train.accuracy(perfect_model(), x, y[:, None])  # (N, 1) against (N,) used to give 0.5


def test_empty_batches_get_a_message_not_a_zero_division():
    model = tiny_classifier()
    with pytest.raises(ValueError, match="at least one row"):
        train.predict(model, torch.zeros(0, 4))
    with pytest.raises(ValueError, match="at least one row"):
        train.fit(model, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), progress=False)
    with pytest.raises(ValueError, match="at least one row"):
        sst.sufficiency_rate(model, torch.zeros(0, 4), torch.ones(4, dtype=torch.bool), "baseline")


def test_numpy_arrays_and_wrong_dtypes_are_named():
    model = tiny_classifier()
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        train.predict(model, np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(TypeError, match="float64.*float32"):
        train.predict(model, torch.zeros(3, 4, dtype=torch.float64))
    keep = torch.ones(4, dtype=torch.bool)
    with pytest.raises(TypeError, match="float64.*float32"):
        sst.sufficiency_rate(model, torch.zeros(3, 4, dtype=torch.float64), keep, "baseline")
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        sst.sufficiency_rate(model, torch.rand(3, 4), keep, "probabilistic", generator=0)


def test_numpy_scalars_are_numbers():
    g = torch.randn(4, 7)
    assert torch.equal(andmask.and_mask(g, np.float32(0.5)), andmask.and_mask(g, 0.5))
    assert torch.equal(
        andmask.sand_mask(g, np.float64(0.5), np.int64(10)), andmask.sand_mask(g, 0.5, 10)
    )


# ----------------------------------------------------------------------------- early stopping


def test_early_stopping_on_a_loss_keeps_the_lowest_value():
    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    model = tiny_classifier()
    values = iter([3.0, 1.0, 2.0, 5.0, 4.0, 0.5])
    snapshots = []

    def evaluate(m):
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return {"val_loss": next(values)}

    history = train.fit(
        model, x, y, epochs=6, evaluate=evaluate, patience=2, monitor="val_loss", progress=False
    )
    # rows: epoch 0 (before training), then epochs 1.. ; the lowest value so far was at epoch 1
    assert list(history["val_loss"]) == [3.0, 1.0, 2.0, 5.0]
    best = snapshots[1]
    assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items())


# ----------------------------------------------------------------------------- modes


def test_checkers_restore_the_training_mode_when_they_raise():
    model = tiny_classifier()
    model.train()
    keep = torch.ones(4, dtype=torch.bool)
    x = torch.rand(5, 4)
    with pytest.raises(TypeError):
        sst.sufficiency_rate(model, x.double(), keep, "baseline")
    with pytest.raises(ValueError, match="n_draws"):
        sst.sufficiency_rate(model, x, keep, "probabilistic", n_draws=0)
    with pytest.raises(ValueError, match="eps"):
        sst.pgd_complement(model, x, keep, torch.zeros(5, dtype=torch.long), float("nan"), 0.1, 3)
    assert model.training, "a failed check must leave the model in training mode"


def test_greedy_sis_rejects_an_unknown_keyword_before_searching():
    calls = []

    def counting(x):
        calls.append(len(x))
        return torch.stack([x.flatten(1).sum(1), -x.flatten(1).sum(1)], 1)

    with pytest.raises(TypeError, match="unknown keyword"):
        sst.greedy_sis(counting, torch.rand(1, 4), n_drawz=3)
    assert calls == [], "the elimination must not run before the arguments are checked"


def test_a_plain_callable_is_a_model_wherever_only_outputs_are_needed():
    net = tiny_classifier()

    def forward(x):  # Captum's forward_func convention
        return net(x)

    x = torch.rand(6, 4)
    keep = torch.zeros(6, 4, dtype=torch.bool)
    keep[:, :2] = True
    assert torch.equal(train.predict(forward, x), train.predict(net, x))
    assert sst.sufficiency_rate(forward, x, keep, "baseline") == sst.sufficiency_rate(
        net, x, keep, "baseline"
    )
    target = train.predict(net, x)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    z1 = sst.pgd_complement(forward, x, keep, target, 0.1, 0.02, 3, generator=g1)
    z2 = sst.pgd_complement(net, x, keep, target, 0.1, 0.02, 3, generator=g2)
    assert torch.equal(z1, z2)
    keep_sis, info = sst.greedy_sis(forward, x[:1])
    assert keep_sis.shape == (1, 4) and len(info) == 1


# ----------------------------------------------------------------------------- NaN


def test_nan_inputs_stop_an_and_mask_step_before_it_poisons_the_weights():
    model = tiny_classifier()
    before = [p.clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    xs = torch.randn(3, 5, 4)
    xs[1, 2, 0] = float("nan")
    ys = torch.randint(0, 3, (3, 5))
    with pytest.raises(ValueError, match="xs holds NaN"):
        andmask.and_mask_step(model, F.cross_entropy, xs, ys, opt, tau=0.5)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))


def test_nan_in_gradients_masks_or_hyper_parameters_is_an_error():
    g = torch.randn(4, 7)
    g[2, 3] = float("nan")
    with pytest.raises(ValueError, match="env_grads holds NaN"):
        andmask.sand_mask(g, 0.5, 10.0)
    model = tiny_classifier()
    x, keep = torch.rand(5, 4), torch.ones(4, dtype=torch.bool)
    with pytest.raises(ValueError, match="baseline"):
        sst.sufficiency_rate(model, x, keep, "baseline", baseline=float("nan"))
    with pytest.raises(ValueError, match="eps"):
        sst.sufficiency_rate(model, x, keep, "robust", eps=float("nan"))
    y = torch.randint(0, 3, (5,))
    with pytest.raises(ValueError, match="l2_grads"):
        rrr.rrr_loss(model, x, y, keep, float("nan"))
    with pytest.raises(ValueError, match="lr"):
        train.fit(model, x, y, lr=float("nan"), progress=False)


# ----------------------------------------------------------------------------- optimizers, rounds


def test_an_optimizer_over_another_model_is_refused():
    model, other = tiny_classifier(0), tiny_classifier(1)
    opt = torch.optim.SGD(other.parameters(), lr=0.1)
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    with pytest.raises(ValueError, match="optimizer does not update"):
        train.fit(model, x, y, optimizer=opt, progress=False)
    with pytest.raises(ValueError, match="optimizer does not update"):
        andmask.and_mask_step(model, F.cross_entropy, x.view(2, 4, 4), y.view(2, 4), opt, tau=0.0)


def test_find_another_explanation_needs_a_new_model_every_round():
    shared = tiny_classifier()
    x, y = torch.rand(16, 4), torch.randint(0, 3, (16,))
    with pytest.raises(ValueError, match="new model every round"):
        rrr.find_another_explanation(
            lambda: shared, x, y, rounds=2, l2_grads=1.0, epochs=1, progress=False
        )


# ----------------------------------------------------------------------------- scale


@pytest.mark.parametrize("c", [1.0, 1e-9, 1e-11, 1e-12, 1e6])
def test_quadratic_inconsistency_does_not_depend_on_the_scale(c):
    h = np.array([np.diag([0.05, 1.0]), np.diag([1.0, 0.05])])
    assert consistency.quadratic_inconsistency(c * h, 0.01) == pytest.approx(0.2, rel=1e-9)
