"""Which rule did a model learn (notebook 03)? How right and how sure it is, where its input
gradient lies and what it does where rules disagree, and the area-matched control of an
annotation. Re-exported by :mod:`hvnotes.rrr`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from hvnotes import seeding, train
from hvnotes.input_gradients import _batched_input_gradients, gradient_mass


@torch.no_grad()
def prediction_summary(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, float]:
    """How right and how sure: ``accuracy``, ``confidence`` (mean largest probability) and
    ``p_true`` (mean probability of the true class) of ``model`` on ``x`` ``(N, ...)``, ``y`` ``(N,)``.

    A model that evades the RRR penalty by under-confidence keeps its accuracy while its
    confidence falls towards 1/K; one that cannot find any rule loses both.
    """
    with train.evaluating(model):
        probs = torch.cat(
            [torch.softmax(model(x[i : i + 2048]), dim=1) for i in range(0, len(x), 2048)]
        )
    return {
        "accuracy": (probs.argmax(dim=1) == y).float().mean().item(),
        "confidence": probs.max(dim=1).values.mean().item(),
        "p_true": probs.gather(1, y.view(-1, 1)).mean().item(),
    }


def rule_use(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    regions: Mapping[str, Tensor] | None = None,
    conflicts: Mapping[str, tuple[Tensor, Tensor]] | None = None,
) -> dict[str, float]:
    """Which rule a model uses, asked twice: where its input gradient is, and what it does.

    Args:
        model: maps ``x`` ``(N, ...)`` to logits; ``y`` ``(N,)`` the labels of ``x``.
        regions: name -> bool mask broadcastable to ``x``; each gives a ``"mass <name>"``
            column, the mean :func:`gradient_mass` of ``input_gradients(model, x)`` inside it.
        conflicts: name -> ``(x_c, y_c)``: inputs on which rules disagree and the class one rule
            says; each gives a column ``name``, the share of predictions equal to ``y_c``.

    Returns:
        ``{"test acc", "confidence", "mass <region>"..., <conflict>...}`` as floats.
    """
    summary = prediction_summary(model, x, y)
    row = {"test acc": summary["accuracy"], "confidence": summary["confidence"]}
    if regions:
        grads = _batched_input_gradients(model, x)
        for name, region in regions.items():
            row[f"mass {name}"] = gradient_mass(grads, region).mean().item()
    for name, (x_c, y_c) in (conflicts or {}).items():
        row[name] = (train.predict(model, x_c) == y_c).float().mean().item()
    return row


def area_matched_control(
    annotations: Tensor, forbidden: Tensor, seed: int | None = None, channel_dim: int | None = None
) -> Tensor:
    """Annotations of the same size as ``annotations``, example by example, that avoid ``forbidden``.

    The control of a claim "annotating X removes the rule": it annotates as many positions per
    example, drawn uniformly at random (``seed``) among those outside ``forbidden``.

    Args:
        annotations: bool ``(N, ...)``.
        forbidden: bool, broadcastable to one example ``annotations[0]``: positions the
            control must not annotate (the rules' pixels).
        channel_dim: if given (``-1`` for ``(N, H, W, 3)`` images), positions are pixels: a
            pixel counts once, and the control marks all of its channels.

    Returns:
        bool of ``annotations``' shape with the same count per example and nothing forbidden.
    """
    annotations = torch.as_tensor(annotations).bool()
    forbidden = torch.as_tensor(forbidden).bool().to(annotations.device).expand_as(annotations[0])
    if channel_dim is not None:
        dim = channel_dim % annotations.ndim
        per_pixel = area_matched_control(
            annotations.any(dim=dim), forbidden.any(dim=dim - 1), seed, None
        )
        return per_pixel.unsqueeze(dim).expand_as(annotations).clone()
    counts = annotations.flatten(1).sum(dim=1)
    allowed = (~forbidden).flatten().nonzero().squeeze(1)
    if len(counts) and int(counts.max()) > len(allowed):
        raise ValueError(
            f"annotations mark up to {int(counts.max())} positions in an example, but only "
            f"{len(allowed)} lie outside forbidden"
        )
    scores = torch.rand(len(counts), len(allowed), generator=seeding.generator(seed))
    ranks = scores.argsort(dim=1).argsort(dim=1).to(annotations.device)
    control = torch.zeros_like(annotations).flatten(1)
    control[:, allowed] = ranks < counts.view(-1, 1)
    return control.view_as(annotations)
