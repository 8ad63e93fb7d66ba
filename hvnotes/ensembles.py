"""Many small MLPs trained at once: the benchmark's methods on a stack of ``K`` independent models.

Notebook 05 trains every method on several data draws, folds, hyper-parameter values and
initialisations; one tiny network at a time would spend its time in Python, so the ``K`` models
are one :class:`MLPs` (stacked weights, one batched matmul per layer). Model ``k``'s loss depends
only on its own weights, so the gradient of the *sum* of the losses is every model's own, and
Adam, element-wise, over the stacked weights is ``K`` independent optimizers. The unit tests
check each batched step against the single-model code (:func:`hvnotes.andmask.and_mask_step`,
:func:`hvnotes.rrr.rrr_loss`, :func:`hvnotes.algorithms.irm_penalty`).

Every batch is stacked ``(K, E, B, ...)``: ``B`` examples of each of ``E`` environments for each
of ``K`` models. The methods, DomainBed style, are each one small function :data:`UPDATES`
``[name](model, xs, ys, hp, step) -> {term: float}`` that leaves the gradient in ``.grad``
(ERM, the AND-mask and SAND-mask with :func:`agreement_mask` / :func:`soft_agreement_mask`,
the AND-mask's random twin, IRMv1 with :func:`irm_penalties`, RRR with :func:`right_reasons`);
``hp`` maps each hyper-parameter to a ``(K,)`` tensor, so models in one stack may differ in it.

:class:`SideBySide` is one method training the stack (``update`` / ``predict``, with
AdamW-style decoupled weight decay or Adam's coupled L2, one value per model), and :func:`fit`
runs it through the package's one loop, ``train.run(algorithm.update, batches)``. The stack
itself (:class:`MLPs`, :func:`predict`, :func:`accuracy`) lives in :mod:`hvnotes.stacked_mlps`
and the batches (:func:`stacked_batches`) in :mod:`hvnotes.batches`; both are importable here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import pandas as pd
import torch
from torch import Tensor, nn

from hvnotes import andmask, validation
from hvnotes.batches import stacked_batches  # noqa: F401  (re-exported: its old home)
from hvnotes.stacked_mlps import MLPs, accuracy, n_parameters, predict  # noqa: F401 (same)
from hvnotes.train import check_positive_int, run

# ----------------------------------------------------------------------------- the methods


def _check_batch(model: MLPs, xs: Tensor, ys: Tensor) -> tuple[int, int, int]:
    if ys.ndim != 3 or xs.shape[:3] != ys.shape or ys.shape[0] != model.n_models:
        raise ValueError(
            f"xs must be (K={model.n_models}, E, B, ...) and ys (K, E, B), got "
            f"{tuple(xs.shape)} and {tuple(ys.shape)}"
        )
    return tuple(ys.shape)


def _ce(logits: Tensor, ys: Tensor) -> Tensor:
    """Per-example cross-entropy, shaped like ``ys``: ``logsumexp(z) - z_y``. (Written out:
    torch's log-softmax over a last axis of 10 classes is several times slower on the CPU.)"""
    picked = logits.gather(-1, ys.unsqueeze(-1)).squeeze(-1)
    return logits.logsumexp(dim=-1) - picked


def env_gradients(model: MLPs, xs: Tensor, ys: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """Every model's per-environment gradients from one pooled backward pass.

    Environment ``e``'s loss of model ``k`` is ``L_ke = mean_b CE``. One backward pass of
    ``sum_k mean_e L_ke`` gives each layer's output gradient per example; since an example only
    affects its own environment, ``dL_ke/dW = E * sum_b a_b^T d_b`` over that environment's
    examples (the trick of :mod:`hvnotes.pooled`, batched over models).

    Returns:
        ``(per-model mean loss (K,), {parameter name: (E, K, *shape)})``; the mean over ``E`` is
        each model's ordinary gradient.
    """
    k, e, b = _check_batch(model, xs, ys)
    logits, inputs, outputs = model.layers(xs.reshape(k, e * b, -1))
    loss = _ce(logits.view(k, e, b, -1), ys).mean(dim=(1, 2))
    out_grads = torch.autograd.grad(loss.sum(), outputs)
    grads = {}
    for i, (a, d) in enumerate(zip(inputs, out_grads, strict=True)):
        a = a.detach().reshape(k * e, b, -1)
        d = d.reshape(k * e, b, -1) * e
        weight = torch.bmm(a.transpose(1, 2), d).view(k, e, a.shape[-1], d.shape[-1])
        grads[f"weights.{i}"] = weight.transpose(0, 1)  # a view: (E, K, in, out)
        grads[f"biases.{i}"] = d.sum(dim=1, keepdim=True).view(k, e, 1, -1).transpose(0, 1)
    return loss.detach(), grads


def agreement_mask(env_grads: Tensor, tau: Tensor) -> Tensor:
    """:func:`hvnotes.andmask.and_mask` for a stack of models, each with its own threshold.

    Args:
        env_grads: ``(E, K, ...)``: model ``k``'s gradient in environment ``e``.
        tau: ``(K,)`` thresholds in [0, 1].

    Returns:
        float ``(K, ...)``: 1 where ``|sum_e sign(g_e)| >= andmask.required_agreement(tau_k, E)``
        (that is, ``|mean_e sign(g_e)| >= tau_k``; ``sign(0) = 0`` counts against), else 0.
    """
    n_envs = env_grads.shape[0]
    needed = torch.tensor(
        [andmask.required_agreement(t, n_envs) for t in tau.tolist()],
        dtype=env_grads.dtype, device=env_grads.device,
    )  # fmt: skip
    count = env_grads.sign().sum(dim=0).abs()
    return (count >= needed.view(-1, *([1] * (count.ndim - 1)))).to(env_grads.dtype)


def soft_agreement_mask(env_grads: Tensor, tau: Tensor, k: float) -> Tensor:
    """:func:`hvnotes.andmask.sand_mask` for a stack of models, each with its own ``tau``:
    ``max(0, tanh(k * (|mean_e sign(g_e)| - tau_k) / var_e(g_e)))`` (unbiased variance, at least
    1e-17). ``env_grads`` ``(E, K, ...)``, ``tau`` ``(K,)``; returns ``(K, ...)``."""
    n_envs = env_grads.shape[0]
    agreement = env_grads.sign().sum(dim=0).abs() / n_envs
    if n_envs > 1:  # written out: torch.var over the first axis takes a slow path on the CPU
        var = (env_grads - env_grads.mean(dim=0)).square().sum(dim=0) / (n_envs - 1)
    else:
        var = torch.zeros_like(agreement)
    tau = tau.view(-1, *([1] * (agreement.ndim - 1)))
    return torch.tanh(k * (agreement - tau) / var.clamp_min(1e-17)).clamp_min(0.0)


def _masked(model: MLPs, xs: Tensor, ys: Tensor, mask_of) -> dict[str, float]:
    """Per-environment gradients, combined as ``mask_of(env_grads) * mean_e g_e``."""
    loss, grads = env_gradients(model, xs, ys)
    kept = []
    for name, p in model.named_parameters():
        mask = mask_of(grads[name])
        p.grad = mask * grads[name].mean(dim=0)
        kept.append(mask.mean())
    return {"loss": loss.mean().item(), "kept": torch.stack(kept).mean().item()}


def same_count_at_random(mask: Tensor, generator: torch.Generator) -> Tensor:
    """A null twin of a 0/1 mask ``(K, ...)``: per model, as many ones at random places."""
    flat = mask.flatten(1)
    noise = torch.rand(flat.shape, generator=generator).to(flat.device)
    rank = noise.argsort(dim=1).argsort(dim=1)
    return (rank < flat.sum(dim=1, keepdim=True)).to(mask.dtype).view_as(mask)


def random_mask_update(model: MLPs, xs: Tensor, ys: Tensor, hp: Mapping[str, Tensor], step: int):
    """The AND-mask's null twin: each step keeps as many components as
    :func:`agreement_mask` would (per model and tensor), at random places."""
    generator = torch.Generator().manual_seed(int(hp["mask_seed"][0]) * 100_003 + step)
    return _masked(
        model, xs, ys, lambda g: same_count_at_random(agreement_mask(g, hp["tau"]), generator)
    )


def erm_update(model: MLPs, xs: Tensor, ys: Tensor, hp: Mapping[str, Tensor], step: int):
    """Mean cross-entropy over the whole batch, every model on its own."""
    k, e, b = _check_batch(model, xs, ys)
    loss = _ce(model(xs.reshape(k, e * b, *xs.shape[3:])).view(k, e, b, -1), ys).mean(dim=(1, 2))
    model.zero_grad(set_to_none=True)
    loss.sum().backward()
    return {"loss": loss.mean().item()}


def and_mask_update(model: MLPs, xs: Tensor, ys: Tensor, hp: Mapping[str, Tensor], step: int):
    """:func:`hvnotes.andmask.and_mask` (threshold ``hp["tau"]``) times the mean gradient."""
    return _masked(model, xs, ys, lambda g: agreement_mask(g, hp["tau"]))


def sand_mask_update(model: MLPs, xs: Tensor, ys: Tensor, hp: Mapping[str, Tensor], step: int):
    """:func:`hvnotes.andmask.sand_mask` (``hp["tau"]``, steepness ``hp["k"]``) times the mean
    gradient."""
    if torch.unique(hp["k"]).numel() != 1:
        raise ValueError("SAND-mask models of one stack must share k")
    steepness = hp["k"][0].item()
    return _masked(model, xs, ys, lambda g: soft_agreement_mask(g, hp["tau"], steepness))


def irm_penalties(logits: Tensor, y: Tensor) -> Tensor:
    """IRMv1's penalty for many environments at once: ``(d/ds CE(s * logits_i, y_i) at s = 1)^2``.

    Args:
        logits: ``(*lead, B, C)``; y: ``(*lead, B)``: one environment per index of ``lead``.

    Returns:
        ``(*lead)``, with a graph (the penalty is trained through). Each entry equals
        :func:`hvnotes.benchmark.irm_penalty` of its environment; one dummy scale per
        environment, one call to autograd.
    """
    scale = torch.ones(
        (*logits.shape[:-2], 1, 1), dtype=logits.dtype, device=logits.device, requires_grad=True
    )
    risk = _ce(logits * scale, y).mean(dim=-1)
    (g,) = torch.autograd.grad(risk.sum(), scale, create_graph=True)
    return g.squeeze(-1).squeeze(-1).square()


def irm_update(model: MLPs, xs: Tensor, ys: Tensor, hp: Mapping[str, Tensor], step: int):
    """Cross-entropy plus the weighted mean over environments of :func:`irm_penalties`."""
    k, e, b = _check_batch(model, xs, ys)
    logits = model(xs.reshape(k, e * b, *xs.shape[3:])).view(k, e, b, -1)
    ce = _ce(logits, ys).mean(dim=(1, 2))
    penalty = irm_penalties(logits, ys).mean(dim=1)
    weight = hp["irm_start_weight"] if step < int(hp["irm_anneal"][0]) else hp["irm_weight"]
    model.zero_grad(set_to_none=True)
    (ce + weight * penalty).sum().backward()
    return {"loss": (ce + weight * penalty).mean().item(), "ce": ce.mean().item(),
            "penalty": penalty.mean().item()}  # fmt: skip


def right_reasons(model: MLPs, x: Tensor, annotations: Tensor) -> tuple[Tensor, Tensor]:
    """Logits and RRR's unweighted penalty ``mean_n sum_d (A_d g_nd)^2`` per model.

    ``x`` ``(K, R, H, W)``; ``annotations`` bool ``(K, H, W)`` (True: must not matter); ``g`` is
    the input gradient of ``sum_c log p_c`` (what :func:`hvnotes.rrr.input_gradients`
    computes), written out for a ReLU MLP so that training through it needs no double
    backward: ``d/dz sum_c log p_c = 1 - C softmax(z)``, carried back through every layer.
    Returns ``(logits (K, R, C), penalty (K,))``, both in the graph.
    """
    logits, _, outputs = model.layers(x.flatten(2))
    n_classes = logits.shape[-1]
    delta = 1 - n_classes * torch.exp(logits - logits.logsumexp(dim=-1, keepdim=True))
    for i in reversed(range(len(model.weights))):
        delta = torch.bmm(delta, model.weights[i].transpose(1, 2))
        if i > 0:
            delta = delta * (outputs[i - 1] > 0)
    g = delta.view(x.shape)
    masked = torch.where(annotations[:, None], g, 0.0)
    return logits, masked.square().flatten(2).sum(dim=2).mean(dim=1)


def rrr_update(model: MLPs, xs: Tensor, ys: Tensor, hp: Mapping[str, Tensor], step: int):
    """Cross-entropy plus ``hp["l2_grads"]`` times :func:`right_reasons` (``hp["annotations"]``)."""
    k, e, b = _check_batch(model, xs, ys)
    logits, rr = right_reasons(model, xs.reshape(k, e * b, *xs.shape[3:]), hp["annotations"])
    ce = _ce(logits, ys.reshape(k, e * b)).mean(dim=1)
    model.zero_grad(set_to_none=True)
    (ce + hp["l2_grads"] * rr).sum().backward()
    return {"loss": (ce + hp["l2_grads"] * rr).mean().item(), "ce": ce.mean().item(),
            "rr": (hp["l2_grads"] * rr).mean().item()}  # fmt: skip


#: the methods by name (DomainBed's units, batched over models)
UPDATES = {
    "ERM": erm_update,
    "AND-mask": and_mask_update,
    "AND-mask, random": random_mask_update,
    "SAND-mask": sand_mask_update,
    "IRMv1": irm_update,
    "RRR": rrr_update,
}
#: each stacked method's hyper-parameters and their defaults (numbers, or one per model)
HPARAMS: dict[str, dict[str, float]] = {
    "ERM": {},
    "AND-mask": {"tau": 1.0},
    "AND-mask, random": {"tau": 1.0, "mask_seed": 0},
    "SAND-mask": {"tau": 0.5, "k": 10.0},
    "IRMv1": {"irm_weight": 100.0, "irm_anneal": 100, "irm_start_weight": 1.0},
    "RRR": {"l2_grads": 10.0},
}


#: the range of each stacked hyper-parameter (the registry's, :mod:`hvnotes.hparams`, where the
#: name is shared); one value per model, each checked
_RANGES = {"tau": (0.0, 1.0), "k": (0.0, math.inf), "mask_seed": (0.0, math.inf),
           "irm_weight": (0.0, math.inf), "irm_anneal": (0.0, math.inf),
           "irm_start_weight": (0.0, math.inf), "l2_grads": (0.0, math.inf)}  # fmt: skip


def _hp_tensors(method: str, n_models: int, hparams: Mapping, device) -> dict[str, Tensor]:
    unknown = sorted(set(hparams) - set(HPARAMS[method]) - {"annotations"})
    if unknown:
        raise ValueError(
            f"{method} takes the hyper-parameters {sorted(HPARAMS[method])}, got {unknown}"
        )
    out = {}
    for name, default in HPARAMS[method].items():
        value = torch.as_tensor(hparams.get(name, default), dtype=torch.float32, device=device)
        out[name] = value.expand(n_models).clone() if value.ndim == 0 else value
        if out[name].shape != (n_models,):
            raise ValueError(f"{name} must be a number or have shape ({n_models},)")
        v, (low, high) = out[name], _RANGES[name]
        inside = torch.isfinite(v).all() and (v >= low).all() and (v <= high).all()
        if not inside or (name == "k" and not (v > low).all()):  # SAND's steepness: k > 0
            interval = f"{'(' if name == 'k' else '['}{low}, {high}]"
            raise ValueError(f"{name} must be finite and in {interval}, got {v.tolist()}")
    if method == "RRR":
        if "annotations" not in hparams:
            raise ValueError("RRR needs annotations: bool (K, H, W) or (H, W)")
        a = torch.as_tensor(hparams["annotations"], device=device).bool()
        out["annotations"] = a.expand(n_models, *a.shape[-2:]) if a.ndim == 2 else a
    return out


# ----------------------------------------------------------------------------- training


class SideBySide(nn.Module):
    """One method training the ``K`` members of :class:`MLPs` side by side: the benchmark's
    algorithm unit (DomainBed's ``update`` / ``predict``, batched over models), so that
    :func:`fit` is ``train.run(algorithm.update, batches)``.

    Args:
        method: a key of :data:`UPDATES`.
        model: the members to train (in place).
        lr: Adam's learning rate (betas 0.9, 0.999), the same for every model.
        weight_decay: a number or one per model ``(K,)``.
        decay: ``"decoupled"`` (AdamW: every weight shrinks by ``lr * weight_decay`` per step
            whatever its gradient) or ``"coupled"`` (Adam's L2: ``weight_decay * w`` is added to
            the gradient, after any mask, and normalised by Adam with it).
        hparams: the method's own (:data:`HPARAMS`), each a number or ``(K,)``; RRR also takes
            ``annotations``. IRMv1 resets Adam at step ``irm_anneal``.
    """

    def __init__(
        self,
        method: str,
        model: MLPs,
        *,
        lr: float,
        weight_decay: float | Tensor = 0.0,
        decay: str = "decoupled",
        **hparams,
    ) -> None:
        super().__init__()
        if method not in UPDATES:
            raise ValueError(f"method must be one of {tuple(UPDATES)}, got {method!r}")
        if decay not in ("decoupled", "coupled"):
            raise ValueError(f"decay must be 'decoupled' or 'coupled', got {decay!r}")
        if not isinstance(model, MLPs):
            raise TypeError(f"model must be hvnotes.ensembles.MLPs, got {type(model).__name__}")
        self.lr = validation.check_number("lr", lr, positive=True)
        device = model.weights[0].device
        self.method, self.model, self.decay = method, model, decay
        self.hp = _hp_tensors(method, model.n_models, hparams, device)
        wd = torch.as_tensor(weight_decay, dtype=torch.float32, device=device)
        wd = wd.expand(model.n_models) if wd.ndim == 0 else wd
        if wd.shape != (model.n_models,) or not torch.isfinite(wd).all() or (wd < 0).any():
            raise ValueError(f"weight_decay must be >= 0, a number or ({model.n_models},)")
        self.params = list(model.parameters())
        self.decays = [wd.view(-1, *([1] * (p.ndim - 1))) for p in self.params]
        self.reset_at = int(self.hp["irm_anneal"][0]) if method == "IRMv1" else None
        self.optimizer = _adam(self.params, self.lr)
        self.steps_done = 0

    def update(self, xs: Tensor, ys: Tensor) -> dict[str, float]:
        """One step on ``xs (K, E, B, ...)``, ``ys (K, E, B)``; the terms' means over models."""
        if self.steps_done == self.reset_at:  # the penalty switches on: fresh moment estimates
            self.optimizer = _adam(self.params, self.lr)
        self.model.train()
        terms = UPDATES[self.method](self.model, xs, ys, self.hp, self.steps_done)
        with torch.no_grad():
            for p, d in zip(self.params, self.decays, strict=True):
                if self.decay == "decoupled":
                    p.mul_(1 - self.lr * d)
                else:
                    p.grad.add_(d * p)
        self.optimizer.step()
        self.steps_done += 1
        return terms

    def predict(self, x: Tensor) -> Tensor:
        """Logits ``(K, M, C)`` of every member on ``x`` ``(K, M, ...)``, in eval mode (the
        members' mode restored after)."""
        with validation.evaluating(self.model):
            return self.model(x)


def fit(
    method: str,
    model: MLPs,
    batches: Iterator[tuple[Tensor, Tensor]],
    *,
    steps: int,
    lr: float,
    weight_decay: float | Tensor = 0.0,
    decay: str = "decoupled",
    log_every: int | None = None,
    evaluate=None,
    **hparams,
) -> pd.DataFrame:
    """Train every model of ``model`` with ``method`` for ``steps`` steps; return the history.

    ``run(SideBySide(method, model, ...).update, batches)``: see :class:`SideBySide` for
    ``method``, ``lr``, ``weight_decay``, ``decay`` and ``hparams``.

    Args:
        batches: yields ``(xs (K, E, B, ...), ys (K, E, B))`` (e.g. :func:`stacked_batches`).
        log_every: one history row every ``log_every`` steps (None: one row, at the end).
        evaluate: ``evaluate() -> {column: float}``, added to every history row (in eval mode).

    Returns:
        :func:`hvnotes.train.run`'s history (mean over models of each logged term); the models
        are left in eval mode.
    """
    algorithm = SideBySide(method, model, lr=lr, weight_decay=weight_decay, decay=decay, **hparams)
    steps = check_positive_int("steps", steps)

    def measure() -> dict[str, float]:
        model.eval()
        return dict(evaluate())

    history = run(
        algorithm.update, batches, steps=steps, log_every=log_every or steps, progress=False,
        evaluate=None if evaluate is None else measure,
    )  # fmt: skip
    model.eval()
    return history


def _adam(params: list[Tensor], lr: float) -> torch.optim.Optimizer:
    """Adam (betas 0.9, 0.999), fused into one kernel where torch offers it (the same update,
    fewer small calls)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)
