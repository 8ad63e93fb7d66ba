"""Every method of the course as one small comparable unit, as in DomainBed's ``algorithms.py``.

An :class:`Algorithm` is an ``nn.Module`` that holds a network, its optimizer and its
hyper-parameters, with two methods:

* ``update(*batch) -> {term: float}``: one training step on one batch; the terms are logged;
* ``predict(x) -> logits (N, C)``: the network's output in eval mode (its mode restored after).

So every trainer is ``train.run(algorithm.update, batches)``. The tensor maths stays in its own
modules (:mod:`hvnotes.masked_step`, :mod:`hvnotes.rrr_objective`, :mod:`hvnotes.sst_objective`);
here each method is a few lines that call it, and the trainers of :mod:`hvnotes.andmask`,
:mod:`hvnotes.rrr`, :mod:`hvnotes.sst` and :mod:`hvnotes.train` build these units.

Batches. Methods that need environments (AND-mask and its relatives, IRMv1) take
environment-stacked batches ``xs (E, B, ...)``, ``ys (E, B, ...)``; the others take plain batches
``x (B, ...)``, ``y (B,)`` (and RRR per-row annotations), or, built with ``stacked=True``, the same
environment-stacked batches, which they pool into ``(E * B, ...)``: then one stream of batches
(:func:`hvnotes.train.env_batches`) serves every method of a comparison.

Hyper-parameters live in one registry, :data:`REGISTRY` (:mod:`hvnotes.hparams`): defaults,
checks (run when the algorithm is built, before any training) and search grids. Every algorithm
has ``lr``, ``weight_decay`` and ``optimizer`` (``"adam"``: coupled decay; ``"adamw"``:
decoupled; ``"sgd"``), or takes an optimizer (or a factory ``params -> optimizer``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hvnotes import hparams as hparams_registry
from hvnotes import masked_step, seeding, temporal, validation
from hvnotes.hparams import REGISTRY, HParam, default_hparams, search_grid
from hvnotes.rrr_objective import rrr_loss
from hvnotes.sst_objective import sst_loss

__all__ = [
    "ALGORITHMS", "ANDMask", "Algorithm", "ERM", "GeometricMean", "HParam", "IRMv1", "Objective",
    "REGISTRY", "RRR", "RandomMask", "SANDMask", "SST", "TemporalANDMask", "default_hparams",
    "get_algorithm", "irm_penalty", "search_grid",
]  # fmt: skip


# ----------------------------------------------------------------------------- the base class


class Algorithm(nn.Module):
    """A network, its optimizer and its hyper-parameters; one ``update`` per batch.

    Args:
        network: the model to train (an ``nn.Module`` mapping ``(B, ...)`` to outputs).
        hparams: overrides of :func:`default_hparams` (checked here, before any training).
        loss_fn: ``loss_fn(output, target) -> scalar`` mean loss (ERM and the AND-mask family;
            cross-entropy by default; IRMv1, RRR and SST are defined with cross-entropy).
        optimizer: a ``torch.optim.Optimizer`` over ``network``'s parameters, or a factory
            ``params -> optimizer``; None builds one from ``lr``, ``weight_decay``, ``optimizer``.
        stacked: whether batches are environment-stacked ``(E, B, ...)`` (always, for the
            methods that need environments; the others pool them).
    """

    name: ClassVar[str] = ""
    needs_envs: ClassVar[bool] = False
    fixed_loss: ClassVar[bool] = False

    def __init__(
        self,
        network: nn.Module,
        hparams: Mapping | None = None,
        *,
        loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
        optimizer: torch.optim.Optimizer | Callable | None = None,
        stacked: bool | None = None,
    ) -> None:
        super().__init__()
        validation.check_model("network", network, module=True)
        if not any(p.requires_grad for p in network.parameters()):
            raise ValueError("network has no trainable parameters (requires_grad) to train")
        validation.check_callable("loss_fn", loss_fn)
        if self.fixed_loss and loss_fn is not F.cross_entropy:
            raise ValueError(f"{self.name} is defined with cross-entropy; it takes no loss_fn")
        if self.needs_envs and stacked is False:
            raise ValueError(f"{self.name} needs environments: its batches are stacked (E, B, ...)")
        self.network, self.loss_fn = network, loss_fn
        self.stacked = True if self.needs_envs else bool(stacked)
        self.hparams = hparams_registry.resolve(self.name, hparams)
        self.steps_done = 0
        if optimizer is None:
            self.optimizer = self.new_optimizer()
        else:
            if not isinstance(optimizer, torch.optim.Optimizer):
                optimizer = validation.check_callable("optimizer", optimizer)(network.parameters())
            validation.check_optimizer(optimizer, network)
            self.optimizer = optimizer

    def new_optimizer(self) -> torch.optim.Optimizer:
        """The optimizer the hyper-parameters name, over the network's parameters."""
        kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
        hp = self.hparams
        return kind[hp["optimizer"]](
            self.network.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"]
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def predict(self, x: Tensor) -> Tensor:
        """Logits ``(N, C)`` of ``x`` ``(N, ...)`` in eval mode (the mode restored after)."""
        with validation.evaluating(self.network):
            return self.network(x)

    def update(self, *batch: Tensor) -> dict[str, float]:
        raise NotImplementedError

    # helpers of the subclasses

    def _pooled(self, *batch: Tensor) -> tuple[Tensor, ...]:
        """The batch as plain ``(B, ...)`` tensors: environment-stacked ones are pooled."""
        if not self.stacked:
            return batch
        validation.check_stacked(batch[0], batch[1])
        return tuple(t.flatten(0, 1) for t in batch)

    def _labels(self, y: Tensor) -> None:
        if self.loss_fn is F.cross_entropy:
            validation.check_labels("y", y, long=True)

    def _descend(self, loss: Tensor) -> None:
        """One optimizer step on ``loss`` (refused when it is not finite)."""
        if not torch.isfinite(loss):
            lr = self.optimizer.param_groups[0].get("lr")
            raise ValueError(
                f"{self.name}: the loss became {loss.item()}; check the data and lr={lr}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.steps_done += 1


# ----------------------------------------------------------------------------- the methods


class ERM(Algorithm):
    """Empirical risk minimisation: the mean loss on the (pooled) batch."""

    name = "ERM"

    def update(self, x: Tensor, y: Tensor) -> dict[str, float]:
        x, y = self._pooled(x, y)
        self._labels(y)
        self.network.train()
        loss = self.loss_fn(self.network(x), y)
        self._descend(loss)
        return {"loss": loss.item()}


class ANDMask(Algorithm):
    """The AND-mask (Parascandolo et al. 2021): :func:`hvnotes.masked_step.and_mask_step`, which
    keeps the gradient components whose signs agree in at least a ``tau`` share of the batch's
    environments (weight decay, the optimizer's, acts after the mask)."""

    name = "AND-mask"
    needs_envs = True
    method: ClassVar[str] = "and"

    def update(self, xs: Tensor, ys: Tensor) -> dict[str, float]:
        self.network.train()
        hp = self.hparams
        twin = {"generator": self.generator, "keep": self.keep} if self.method == "random" else {}
        loss, kept = masked_step.and_mask_step(
            self.network, self.loss_fn, xs, ys, self.optimizer, hp["tau"], method=self.method,
            rescale=hp["rescale"], k=hp.get("k", 10.0), **twin,
        )  # fmt: skip
        self.steps_done += 1
        terms = {"loss": loss, "kept": sum(kept.values()) / len(kept)}
        return terms | {f"kept_{name}": value for name, value in kept.items()}


class GeometricMean(ANDMask):
    """The AND-mask's geometric-mean variant: ``mask * sign(mean g) * exp(mean log |g|)``."""

    name = "geometric mean"
    method = "geom"


class SANDMask(ANDMask):
    """SAND-mask (Shahtalebi et al. 2021): a soft mask ``tanh(k (agreement - tau) / var)``."""

    name = "SAND-mask"
    method = "sand"


class RandomMask(ANDMask):
    """The AND-mask's null twin: per tensor as many components kept as the AND-mask at ``tau``
    would keep on this batch (or, with ``keep``, a fixed fraction ``{parameter name: fraction}``
    or one number), at positions drawn at random; what is left when agreement is removed.

    The positions come from a generator seeded with ``seed`` (None: the run's
    ``hvnotes.derive_seed(0)``) on the network's device.
    """

    name = "random mask"
    method = "random"

    def __init__(self, network, hparams=None, *, keep=None, **kw) -> None:
        super().__init__(network, hparams, **kw)
        self.keep = keep
        device = next(network.parameters()).device
        self.generator = seeding.generator(self.hparams["seed"], device=device)


class TemporalANDMask(Algorithm):
    """Temporal AND-mask (paper Algorithm 1): agreement measured over time, one batch at a time.

    The gradient of the pooled batch goes to :class:`hvnotes.temporal.TemporalAndMaskAdam`, which
    masks Adam's first moment where the sign has not held for long enough (``tau``, ``beta3``);
    meant for batches from a single environment each (``envs_per_step=1``).
    """

    name = "Temporal AND-mask"
    needs_envs = True

    def new_optimizer(self) -> torch.optim.Optimizer:
        hp = self.hparams
        return temporal.TemporalAndMaskAdam(
            self.network.parameters(), lr=hp["lr"], betas=hp["betas"], beta3=hp["beta3"],
            tau=hp["tau"], eps=hp["eps"], weight_decay=hp["weight_decay"],
        )  # fmt: skip

    def update(self, xs: Tensor, ys: Tensor) -> dict[str, float]:
        self.network.train()
        # tau = 0: the pooled step, no mask across environments; the optimizer masks over time
        loss, _ = masked_step.and_mask_step(self.network, self.loss_fn, xs, ys, self.optimizer, 0.0)
        self.steps_done += 1
        kept = [s["kept"] for s in self.optimizer.state.values() if "kept" in s]
        return {"loss": loss, "kept": sum(kept) / len(kept) if kept else 1.0}


def irm_penalty(logits: Tensor, y: Tensor) -> Tensor:
    """IRMv1's penalty for one environment: ``(d/ds CE(s * logits, y) at s = 1)^2``.

    Args:
        logits: ``(B, C)``; y: ``(B,)``. Returns a scalar with a graph (it is trained through).
    """
    scale = torch.ones((), dtype=logits.dtype, device=logits.device, requires_grad=True)
    (g,) = torch.autograd.grad(F.cross_entropy(logits * scale, y), scale, create_graph=True)
    return g.square()


class IRMv1(Algorithm):
    """IRMv1 (Arjovsky et al. 2019), as DomainBed runs it.

    Pooled cross-entropy plus ``w`` times the mean over environments of :func:`irm_penalty`,
    ``w = 1`` for the first ``irm_anneal`` updates and ``irm_weight`` after; at the switch the
    optimizer's state is reset (its moments were built on gradients ``irm_weight`` times
    smaller).
    """

    name = "IRMv1"
    needs_envs = True
    fixed_loss = True

    def update(self, xs: Tensor, ys: Tensor) -> dict[str, float]:
        validation.check_stacked(xs, ys)
        self._labels(ys.flatten())
        hp, step = self.hparams, self.steps_done
        if step == hp["irm_anneal"]:
            self.optimizer.state.clear()
        self.network.train()
        logits = self.network(xs.flatten(0, 1)).view(*ys.shape, -1)
        ce = F.cross_entropy(logits.flatten(0, 1), ys.flatten())
        penalty = torch.stack([irm_penalty(le, ye) for le, ye in zip(logits, ys, strict=True)])
        weight = 1.0 if step < hp["irm_anneal"] else hp["irm_weight"]
        loss = ce + weight * penalty.mean()
        self._descend(loss)
        return {"loss": loss.item(), "ce": ce.item(), "penalty": penalty.mean().item()}


class RRR(Algorithm):
    """Right for the Right Reasons (Ross et al. 2017): :func:`hvnotes.rrr_objective.rrr_loss`.

    Annotations (True = must not matter) come with each batch, ``update(x, y, a)`` with ``a``
    ``(B, ...)``, or once for all, ``RRR(network, annotations=mask)`` with ``mask`` shaped like
    one input (or like the batch).
    """

    name = "RRR"
    fixed_loss = True

    def __init__(self, network, hparams=None, *, annotations: Tensor | None = None, **kw) -> None:
        super().__init__(network, hparams, **kw)
        if annotations is not None:
            validation.check_tensor("annotations", annotations, rows=False)
        self.annotations = annotations

    def update(self, x: Tensor, y: Tensor, *annotations: Tensor) -> dict[str, float]:
        x, y, *annotations = self._pooled(x, y, *annotations)
        if len(annotations) > 1 or (not annotations and self.annotations is None):
            raise ValueError("RRR needs one annotation mask: in the batch or RRR(annotations=)")
        mask = annotations[0] if annotations else self.annotations
        self._labels(y)
        self.network.train()
        hp = self.hparams
        total, ce, rr = rrr_loss(self.network, x, y, mask, hp["l2_grads"], quantity=hp["quantity"])
        self._descend(total)
        return {"loss": total.item(), "ce": ce.item(), "rr": rr.item()}


class SST(Algorithm):
    """Sufficient Subset Training (Bassan et al. 2025): :func:`hvnotes.sst_objective.sst_loss` on a
    network with an explanation head (:class:`hvnotes.models.DualHeadMLP`).

    The complement fills of training are drawn from a generator seeded with ``seed`` (None: the
    run's ``hvnotes.derive_seed(0)``) on the network's device.
    """

    name = "SST"
    fixed_loss = True

    def __init__(self, network, hparams=None, **kw) -> None:
        super().__init__(network, hparams, **kw)
        if not hasattr(network, "logits_and_scores"):
            raise TypeError(
                "network must have logits_and_scores(x) -> (logits, scores), e.g. DualHeadMLP"
            )
        device = next(network.parameters()).device
        self.generator = seeding.generator(self.hparams["seed"], device=device)

    def update(self, x: Tensor, y: Tensor) -> dict[str, float]:
        x, y = self._pooled(x, y)
        self._labels(y)
        self.network.train()
        hp = self.hparams
        total, ce, faith, size = sst_loss(
            self.network, x, y, notion=hp["notion"], xi=hp["xi"], lam=hp["lam"], tau=hp["tau"],
            threshold=hp["threshold"], baseline=hp["baseline"], eps=hp["eps"],
            alpha=hp["alpha"], steps=hp["pgd_steps"], bounds=hp["bounds"],
            generator=self.generator,
        )  # fmt: skip
        self._descend(total)
        return {
            "loss": total.item(),
            "ce": ce.item(),
            "faith": faith.item(),
            "size_batch": size.item(),
        }


class Objective(Algorithm):
    """Any training objective: ``objective(network, *batch)`` returns the loss to descend (a
    scalar mean over the batch), or named terms ``{"loss": ..., other terms}`` (a tuple led by
    the loss also works); every term is logged. What :func:`hvnotes.train.fit` trains with a
    ``loss_fn`` of the learner's own. Not a method of the registry: it has the common
    hyper-parameters only (``lr``, ``weight_decay``, ``optimizer``).
    """

    name = "objective"

    def __init__(self, network, objective: Callable, hparams=None, *, argument="objective", **kw):
        super().__init__(network, hparams, **kw)
        self.argument = argument  # what the caller called it, for the errors
        self.objective = validation.check_callable(argument, objective)

    def update(self, *batch: Tensor) -> dict[str, float]:
        self.network.train()
        terms = _as_terms(self.objective(self.network, *batch), self.argument)
        loss = terms["loss"]
        if not isinstance(loss, Tensor) or loss.ndim != 0:
            got = f"shape {tuple(loss.shape)}" if isinstance(loss, Tensor) else type(loss).__name__
            raise ValueError(f"{self.argument} must return a scalar loss (a batch mean), got {got}")
        self._descend(loss)
        return {
            k: float(v.detach()) if isinstance(v, Tensor) else float(v) for k, v in terms.items()
        }


def _as_terms(out, argument: str) -> dict[str, Tensor]:
    """An objective's output as named terms with the backpropagated ``"loss"`` first."""
    if isinstance(out, Mapping):
        if "loss" not in out:
            raise ValueError(f"a {argument} that returns a dict must name 'loss', got {list(out)}")
        return dict(out)
    if isinstance(out, tuple):
        return {"loss": out[0]}
    return {"loss": out}


#: every method by its registry name (:class:`Objective`, the generic unit, is not one)
ALGORITHMS: dict[str, type[Algorithm]] = {
    cls.name: cls
    for cls in (ERM, ANDMask, GeometricMean, SANDMask, RandomMask, TemporalANDMask, IRMv1, RRR,
                SST)
}  # fmt: skip


def get_algorithm(name: str) -> type[Algorithm]:
    """The class of algorithm ``name`` (one of :data:`ALGORITHMS`)."""
    return ALGORITHMS[validation.check_choice("algorithm", name, tuple(ALGORITHMS))]
