"""One small training loop for every notebook.

``fit`` runs minibatch epochs with any loss (plain cross-entropy by default, or a closure such as
the RRR loss), shows progress with ``tqdm.auto`` (silenced by ``TQDM_DISABLE=1``), evaluates
accuracy on named sets after each epoch, can stop early, and returns the history as a DataFrame.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from hvnotes import seeding

#: ``loss_fn(model, x, y) -> scalar loss`` (it may also return a tuple whose first item is the loss).
LossFn = Callable[[nn.Module, Tensor, Tensor], Tensor]


def show(progress: bool) -> bool:
    """Whether to draw a progress bar: asked for, and not switched off by ``TQDM_DISABLE``.

    tqdm's notebook widgets ignore ``TQDM_DISABLE``, so we read it here: scripted runs and tests
    set it, and committed notebooks then carry no frozen progress bars.
    """
    return bool(progress) and os.environ.get("TQDM_DISABLE", "").lower() in ("", "0", "false")


def cross_entropy(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy of ``model(x)`` (logits ``(B, C)``) against labels ``y`` ``(B,)``."""
    return nn.functional.cross_entropy(model(x), y)


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Predicted classes ``(N,)`` for inputs ``(N, ...)``, computed in eval mode in batches."""
    was_training = model.training
    model.eval()
    preds = [model(x[i : i + batch_size]).argmax(dim=1) for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long, device=x.device)


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Fraction of rows of ``x`` ``(N, ...)`` whose predicted class equals ``y`` ``(N,)``."""
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    return (predict(model, x) == y).float().mean().item()


def fit(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    loss_fn: LossFn = cross_entropy,
    optimizer: torch.optim.Optimizer | None = None,
    eval_sets: Mapping[str, tuple[Tensor, Tensor]] | None = None,
    patience: int | None = None,
    monitor: str | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Train ``model`` on ``(x, y)`` with minibatches and return its history.

    Args:
        model: any module mapping ``(B, ...)`` to logits ``(B, C)``; trained in place.
        x, y: training inputs ``(N, ...)`` and integer labels ``(N,)`` on the model's device.
        epochs, batch_size, lr: the usual; the optimizer is Adam unless ``optimizer`` is given.
        weight_decay: L2 penalty of the default Adam (coupled, as in the papers' ``λ‖θ‖²``).
        loss_fn: ``loss_fn(model, xb, yb)`` returning the loss (or a tuple led by it).
        eval_sets: name -> ``(x, y)``; each gets an ``acc_<name>`` column per epoch.
        patience: stop when ``monitor`` has not improved for this many epochs (None: never).
        monitor: the column early stopping watches (default: the first eval set's accuracy);
            the best epoch's weights are restored when early stopping is on.
        seed: seeds the shuffling of minibatches (independent of the global RNG; None: the
            run's ``hvnotes.derive_seed(0)``).
        progress: show a tqdm bar over epochs.

    Returns:
        DataFrame with one row per epoch: ``epoch``, ``loss`` (mean over minibatches) and
        ``acc_<name>`` for every eval set.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    eval_sets = dict(eval_sets or {})
    if patience is not None:
        monitor = monitor or (f"acc_{next(iter(eval_sets))}" if eval_sets else None)
        if monitor is None:
            raise ValueError("patience needs eval_sets (or a monitor column) to watch")
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = seeding.generator(seed)

    rows, best, best_state, stale = [], -float("inf"), None, 0
    for epoch in tqdm(range(1, epochs + 1), desc="epochs", leave=False, disable=not show(progress)):
        model.train()
        order = torch.randperm(len(x), generator=generator).to(x.device)
        losses = []
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            out = loss_fn(model, x[idx], y[idx])
            loss = out[0] if isinstance(out, tuple) else out
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        row = {"epoch": epoch, "loss": sum(losses) / len(losses)}
        row.update({f"acc_{name}": accuracy(model, *xy) for name, xy in eval_sets.items()})
        rows.append(row)
        if patience is not None:
            if row[monitor] > best:
                best, stale = row[monitor], 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
                if stale >= patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    return pd.DataFrame(rows)
