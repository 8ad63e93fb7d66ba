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
