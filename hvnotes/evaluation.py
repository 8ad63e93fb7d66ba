"""A trained classifier on a data set: predicted classes in eval mode and in batches, accuracy, mean
cross-entropy. ``model`` may be a module or any callable mapping inputs ``(B, ...)`` to logits
``(B, C)`` (Captum's ``forward_func`` convention); a module's mode is restored after. Re-exported
by :mod:`hvnotes.train`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hvnotes import validation
from hvnotes.validation import (
    check_input_dtype,
    check_tensor,
    evaluating,
)


def cross_entropy(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy of ``model(x)`` (logits ``(B, C)``) against labels ``y`` ``(B,)``."""
    return nn.functional.cross_entropy(model(x), y)


@torch.no_grad()
def _predicted_classes(model, x: Tensor, batch_size: int) -> tuple[Tensor, int]:
    """Predicted classes ``(N,)`` and the number of classes ``C``, the model's logits checked."""
    validation.check_model("model", model)
    check_tensor("x", x)
    batch_size = validation.check_integer("batch_size", batch_size, low=1)
    check_input_dtype(model, x)
    preds, classes = [], 0
    with evaluating(model):
        for i in range(0, len(x), batch_size):
            logits = validation.check_logits(
                "model", model(x[i : i + batch_size]), min(batch_size, len(x) - i)
            )
            preds.append(logits.argmax(dim=1))
            classes = logits.shape[1]
    return torch.cat(preds), classes


def predict(model, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Predicted classes ``(N,)`` for inputs ``(N, ...)``, computed in eval mode in batches.

    ``model`` may be a module or any callable mapping inputs to logits ``(B, C)`` (finite: NaN
    logits, from NaN weights say, are an error rather than class 0). The model's mode is
    restored after.
    """
    return _predicted_classes(model, x, batch_size)[0]


def accuracy(model, x: Tensor, y: Tensor) -> float:
    """Fraction of rows of ``x`` ``(N, ...)`` whose predicted class equals ``y`` ``(N,)``.

    ``y`` must be integer class indices in ``[0, C)`` for a model with ``C`` outputs.
    """
    validation.check_labels("y", y)
    if not isinstance(x, Tensor) or len(x) != len(y):
        check_tensor("x", x)
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    preds, classes = _predicted_classes(model, x, 1024)
    validation.check_labels("y", y, classes=classes)
    return (preds == y).float().mean().item()
