"""The training loop: it learns a separable problem, records history, stops early, checks input."""

import pytest
import torch

from hvnotes import models, train


def blobs(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) * 0.3 + (y.float() * 2 - 1).unsqueeze(1) * 2
    return x, y


def test_fit_learns_separable_blobs_and_records_history():
    torch.manual_seed(0)
    x, y = blobs()
    model = models.mlp(2, (8,), 2)
    history = train.fit(
        model, x, y, epochs=20, batch_size=32, lr=1e-2, eval_sets={"train": (x, y)}, progress=False
    )
    assert list(history.columns) == ["epoch", "loss", "seconds", "acc_train"]
    assert len(history) == 20
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    assert train.accuracy(model, x, y) == 1.0


def test_accuracy_matches_a_hand_count():
    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    y = torch.tensor([0, 0, 0, 1])  # predictions are 0, 1, 0, 1 -> three right
    assert train.accuracy(model, x, y) == 0.75


def test_early_stopping_restores_the_best_epoch():
    torch.manual_seed(0)
    x, y = blobs()
    model = models.mlp(2, (8,), 2)
    history = train.fit(
        model, x, y, epochs=200, lr=1e-2, eval_sets={"val": (x, y)}, patience=3, progress=False
    )
    assert len(history) < 200
    assert train.accuracy(model, x, y) == history["acc_val"].max()


def test_fit_accepts_a_loss_that_returns_a_tuple():
    x, y = blobs()
    model = models.mlp(2, (4,), 2)

    def loss_fn(m, xb, yb):
        ce = train.cross_entropy(m, xb, yb)
        return ce, ce.detach()

    history = train.fit(model, x, y, epochs=2, loss_fn=loss_fn, progress=False)
    assert len(history) == 2


def test_fit_rejects_bad_input():
    x, y = blobs()
    model = models.mlp(2, (4,), 2)
    with pytest.raises(ValueError, match="same length"):
        train.fit(model, x, y[:-1], progress=False)
    with pytest.raises(ValueError, match="epochs"):
        train.fit(model, x, y, epochs=0, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        train.fit(model, x, y, batch_size=0, progress=False)
    with pytest.raises(ValueError, match="patience"):
        train.fit(model, x, y, patience=2, progress=False)


def test_mlp_shapes_and_errors():
    model = models.mlp(64, (16, 8), 3)
    assert model(torch.zeros(5, 8, 8)).shape == (5, 3)
    with pytest.raises(ValueError, match="in_features"):
        models.mlp(0)
    with pytest.raises(ValueError, match="hidden"):
        models.mlp(4, (0,))


def test_fit_restores_the_callers_mode():
    x, y = blobs()
    model = models.mlp(2, (4,), 2).eval()
    train.fit(model, x, y, epochs=1, progress=False)
    assert not model.training, "fit trained in train mode and left the model there"
    model.train()
    train.fit(model, x, y, epochs=1, progress=False)
    assert model.training


def test_fit_checks_labels_against_the_models_outputs_before_training():
    x, y = blobs()
    model = models.mlp(2, (4,), 2)
    before = [p.clone() for p in model.parameters()]
    cases = [
        (y[:, None], ValueError, "y must have 1 dimension"),
        (y.float(), TypeError, "integer class indices"),
        (y + 1, ValueError, r"\[0, 2\).*2 outputs"),
    ]
    for labels, error, message in cases:
        with pytest.raises(error, match=message):
            train.fit(model, x, labels, epochs=1, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))


def test_fit_names_a_monitor_that_no_column_has_before_training():
    x, y = blobs()
    model = models.mlp(2, (4,), 2)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="monitor='acc_val' is not a column"):
        train.fit(model, x, y, patience=2, monitor="acc_val", progress=False)
    with pytest.raises(ValueError, match="monitor='acc_vla' is not a column"):
        train.fit(model, x, y, patience=2, monitor="acc_vla", eval_sets={"val": (x, y)},
                  progress=False)  # fmt: skip
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))
    history = train.fit(model, x, y, epochs=3, patience=2, monitor="loss", progress=False)
    assert len(history) <= 3  # a loss term is a column too


def test_model_contract_in_fit_and_predict():
    x, y = blobs()
    net = models.mlp(2, (4,), 2)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        train.fit(lambda t: net(t), x, y, progress=False)
    one_output = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Flatten(0))
    with pytest.raises(ValueError, match=r"logits of shape \(N, C\)"):
        train.predict(one_output, x)
    with pytest.raises(ValueError, match=r"logits of shape \(N, C\)"):
        train.fit(one_output, x, y, progress=False)
    with torch.no_grad():
        net[1].weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN or inf logits"):
        train.predict(net, x)  # used to predict class 0 for every row


def test_predict_batches_and_its_batch_size():
    x, _ = blobs(n=50)
    net = models.mlp(2, (4,), 3)
    whole = train.predict(net, x)
    assert torch.equal(train.predict(net, x, batch_size=7), whole)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="batch_size"):
            train.predict(net, x, batch_size=bad)
    with pytest.raises(TypeError, match="batch_size"):
        train.predict(net, x, batch_size=2.5)


def test_run_takes_a_finite_iterable_without_steps():
    seen = []

    def step(a):
        seen.append(float(a))
        return {"value": float(a)}

    history = train.run(step, [(torch.tensor(v),) for v in (1.0, 2.0, 6.0)], progress=False)
    assert seen == [1.0, 2.0, 6.0]
    assert history["step"].tolist() == [3] and history["value"].tolist() == [3.0]
    history = train.run(step, [(torch.tensor(1.0),)] * 5, log_every=2, progress=False)
    assert history["step"].tolist() == [2, 4, 5]
    with pytest.raises(ValueError, match="batches ran out after 2 step"):
        train.run(step, [(torch.tensor(1.0),)] * 2, steps=3, progress=False)
    with pytest.raises(TypeError, match="step must return a dict"):
        train.run(lambda a: 1.0, [(torch.tensor(1.0),)], progress=False)
    with pytest.raises(TypeError, match="batches must be an iterable"):
        train.run(step, 3, progress=False)


def test_env_batches_names_what_is_not_stacked():
    with pytest.raises(TypeError, match="tensor 1 must be a torch.Tensor"):
        next(train.env_batches(torch.zeros(2, 3, 4), [[0, 1, 2]] * 2))
    with pytest.raises(ValueError, match="tensor 0 must have at least 2"):
        next(train.env_batches(torch.zeros(3)))


def test_minibatches_are_fits_batches():
    from hvnotes import batches, seeding

    x, y = blobs(n=10)
    got = batches.minibatches(x, y, batch_size=4, seed=3)
    want = batches._minibatches((x, y), 4, seeding.generator(3))
    for _ in range(6):  # two epochs: 4 + 4 + 2 rows each
        a, b = next(got), next(want)
        assert all(torch.equal(s, t) for s, t in zip(a, b, strict=True))
    with pytest.raises(ValueError, match="tensor 1 has 9 rows"):
        batches.minibatches(x, y[:-1], batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        batches.minibatches(x, y, batch_size=0)
