"""The training loops as they were before every trainer became ``train.run(algorithm.update,
batches)``, frozen here so that the tests can show the rewiring changed no number: a step of
``train.fit`` on a loss function, ``andmask.fit_and_mask``'s step, ``ensembles.fit``'s step
(the benchmark's) and ``phenomena.run_grokking``'s full-batch loop (the one the capstone's
registration pinned). Each is the smallest loop that reproduces the old trainer; data, seeds and
evaluation come from the package unchanged.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from hvnotes import andmask, seeding, train
from hvnotes.grokking import _pair_losses


def fit(model, *data, epochs, batch_size, optimizer, loss_fn, seed):
    """The old ``train.fit`` step on ``loss_fn(model, *batch) -> loss or {"loss": ...}``:
    returns every step's terms."""
    generator = seeding.generator(seed)
    per_epoch = -(-len(data[0]) // batch_size)
    batches = train._minibatches(data, batch_size, generator)
    steps = []
    for batch in itertools.islice(batches, epochs * per_epoch):
        model.train()
        out = loss_fn(model, *batch)
        terms = dict(out) if isinstance(out, dict) else {"loss": out}
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        steps.append({k: float(v.detach()) for k, v in terms.items()})
    return steps


def fit_and_mask(model, loss_fn, x_envs, y_envs, optimizer, *, steps, tau, method, rescale, k,
                 keep, batch_per_env, seed):  # fmt: skip
    """The old ``andmask.fit_and_mask`` step: every step's loss and kept fractions."""
    mask_generator = seeding.generator(seed, device=x_envs.device)
    batches = train.env_batches(x_envs, y_envs, batch_per_env=batch_per_env, seed=seed)
    out = []
    for xs, ys in itertools.islice(batches, steps):
        model.train()
        loss, kept = andmask.and_mask_step(
            model, loss_fn, xs, ys, optimizer, tau, method=method, rescale=rescale, k=k,
            generator=mask_generator, keep=keep,
        )  # fmt: skip
        out.append({"loss": loss} | {f"kept_{name}": value for name, value in kept.items()})
    return out


def ensembles_fit(update, model, batches, hp, *, steps, lr, weight_decay, decay, reset_at=None):
    """The old ``ensembles.fit`` step (Adam, decoupled or coupled decay per model, IRMv1's reset
    of Adam at ``reset_at``): every step's terms."""
    params = list(model.parameters())
    wd = torch.as_tensor(weight_decay, dtype=torch.float32).expand(model.n_models)
    decays = [wd.view(-1, *([1] * (p.ndim - 1))) for p in params]
    optimizer, out = _fused_adam(params, lr), []
    for step, (xs, ys) in enumerate(itertools.islice(batches, steps)):
        if step == reset_at:
            optimizer = _fused_adam(params, lr)
        model.train()
        terms = update(model, xs, ys, hp, step)
        with torch.no_grad():
            for p, d in zip(params, decays, strict=True):
                if decay == "decoupled":
                    p.mul_(1 - lr * d)
                else:
                    p.grad.add_(d * p)
        optimizer.step()
        out.append(terms)
    return out


def _fused_adam(params, lr):
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


def grokking_steps(model, a: Tensor, b: Tensor, y: Tensor, weight: Tensor, loss: str, *, steps,
                   lr, betas, weight_decay) -> list[float]:  # fmt: skip
    """The registered loop of ``run_grokking``: full-batch Adam, decoupled decay per run."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=betas)
    shrink = (1 - lr * torch.tensor(weight_decay, dtype=weight.dtype)).clamp_min(0.0)
    out = []
    for _ in range(steps):
        per_pair = _pair_losses(model(a, b), y, loss)  # (K, n_max)
        total = (per_pair * weight).sum()
        opt.zero_grad(set_to_none=True)
        total.backward()
        with torch.no_grad():
            for w in model.parameters():
                w.mul_(shrink.view(-1, *[1] * (w.dim() - 1)))
        opt.step()
        out.append(total.item())
    return out
