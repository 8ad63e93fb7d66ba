"""Bad input, tried as a user would: a clear error that names the argument, or the right answer.

Each test here failed on the package before it was made safe (the course's issue on trust): a
silent broadcast, a mode left switched, NaN flowing through, a raw torch error.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hvnotes import andmask, consistency, models, rrr, sst, train


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
