"""The benchmark's methods as notebook 05 trained them before its rewrite (``hvnotes.benchmark`` at
the commit that merged phase 1 of the package issue): the frozen reference that
``test_algorithms.py`` compares the ``algorithms`` module with, one batch at a time. Notebook 05's
rewrite removed these classes from the package; the comparisons keep checking that ERM, RRR and
IRMv1 as ``Algorithm`` subclasses make the very updates the benchmark made.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hvnotes import andmask, rrr
from hvnotes.datasets import ShortcutDigits


def irm_penalty(logits: Tensor, y: Tensor) -> Tensor:
    """IRMv1's penalty for one environment: ``(d/ds CE(s * logits, y) at s = 1)^2``.

    Args:
        logits: ``(B, C)``; y: ``(B,)``. Returns a scalar with a graph (it is trained through).
    """
    scale = torch.ones((), dtype=logits.dtype, device=logits.device, requires_grad=True)
    (g,) = torch.autograd.grad(F.cross_entropy(logits * scale, y), scale, create_graph=True)
    return g.square()


class Method:
    """One algorithm, DomainBed style: a network, its optimizer, and one ``update`` per batch.

    Subclasses set ``defaults`` (their hyper-parameters; the registry :data:`HPARAMS` collects
    them) and implement ``update(xs, ys, step) -> {term: float}`` on an env-stacked batch
    ``xs`` ``(E, B, H, W)``, ``ys`` ``(E, B)``; the returned terms are logged in the history.
    Every method gets the same optimizer: AdamW, whose *decoupled* weight decay shrinks every
    weight by ``lr * weight_decay`` per step whatever its gradient (``decoupled=False``: Adam with
    the decay added to the gradient, which Adam then normalises — on a coordinate the AND-mask
    zeroes that becomes a step of about ``lr`` towards 0, a strong pruning of its own).
    """

    defaults: dict = {}

    def __init__(
        self,
        model: nn.Module,
        data: ShortcutDigits,
        *,
        lr: float,
        weight_decay: float,
        decoupled: bool = True,
        **hparams,
    ) -> None:
        unknown = sorted(set(hparams) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"{type(self).__name__} takes the hyper-parameters {sorted(self.defaults)}, "
                f"got {unknown}"
            )
        self.model, self.data, self.hp = model, data, self.defaults | hparams
        self.lr, self.weight_decay, self.decoupled = lr, weight_decay, decoupled
        self.optimizer = self.new_optimizer()

    def new_optimizer(self) -> torch.optim.Optimizer:
        kind = torch.optim.AdamW if self.decoupled else torch.optim.Adam
        return kind(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def descend(self, loss: Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def update(self, xs: Tensor, ys: Tensor, step: int) -> dict[str, float]:
        raise NotImplementedError


class ERM(Method):
    """Cross-entropy on the pooled batch; needs nothing from the user."""

    def update(self, xs, ys, step):
        loss = F.cross_entropy(self.model(xs.flatten(0, 1)), ys.flatten())
        self.descend(loss)
        return {"loss": loss.item()}


class ANDMask(Method):
    """:func:`hvnotes.andmask.and_mask_step` with threshold ``tau``; needs environments."""

    defaults = {"tau": 1.0}

    def update(self, xs, ys, step):
        loss, kept = andmask.and_mask_step(
            self.model, F.cross_entropy, xs, ys, self.optimizer, tau=self.hp["tau"]
        )
        return {"loss": loss, "kept": sum(kept.values()) / len(kept)}


class RRR(Method):
    """:func:`hvnotes.rrr.rrr_loss` with the shortcut annotated, weight ``l2_grads`` (λ1)."""

    defaults = {"l2_grads": 10.0}

    def update(self, xs, ys, step):
        total, ce, rr = rrr.rrr_loss(
            self.model, xs.flatten(0, 1), ys.flatten(), self.data.shortcut, self.hp["l2_grads"]
        )
        self.descend(total)
        return {"loss": total.item(), "ce": ce.item(), "rr": rr.item()}


class IRMv1(Method):
    """IRMv1 (Arjovsky et al. 2019), as DomainBed runs it; needs environments.

    Pooled cross-entropy plus ``w`` times the mean of each environment's :func:`irm_penalty`,
    with ``w = 1`` for the first ``irm_anneal`` steps and ``irm_weight`` after. At the switch
    Adam is reset, because its moment estimates would otherwise meet gradients a hundred times
    larger than the ones they were built on (DomainBed's fix).
    """

    defaults = {"irm_weight": 100.0, "irm_anneal": 100}

    def update(self, xs, ys, step):
        if step == self.hp["irm_anneal"]:
            self.optimizer = self.new_optimizer()
        logits = self.model(xs.flatten(0, 1)).view(*ys.shape, -1)
        ce = F.cross_entropy(logits.flatten(0, 1), ys.flatten())
        penalty = torch.stack([irm_penalty(le, ye) for le, ye in zip(logits, ys, strict=True)])
        weight = 1.0 if step < self.hp["irm_anneal"] else self.hp["irm_weight"]
        loss = ce + weight * penalty.mean()
        self.descend(loss)
        return {"loss": loss.item(), "ce": ce.item(), "penalty": penalty.mean().item()}


#: the methods by name, and their hyper-parameters (DomainBed's registry)
METHODS: dict[str, type[Method]] = {"ERM": ERM, "AND-mask": ANDMask, "RRR": RRR, "IRMv1": IRMv1}
HPARAMS: dict[str, dict] = {name: dict(cls.defaults) for name, cls in METHODS.items()}
#: the tuning budget: three values of each method's main knob. ERM has no knob of its own, so it
#: gets the weight decay, over a range where AdamW's shrinkage (``lr * weight_decay`` per step,
#: up to 0.3 %) changes the model within the 300 steps.
SEARCH: dict[str, dict[str, tuple]] = {
    "ERM": {"weight_decay": (1e-2, 1e-1, 1.0)},
    "AND-mask": {"tau": (0.5, 0.75, 1.0)},
    "RRR": {"l2_grads": (1.0, 10.0, 100.0)},
    "IRMv1": {"irm_weight": (10.0, 100.0, 1000.0)},
}
