"""The batches the trainers draw: shuffled minibatches of tensors indexed together,
environment-stacked batches ``(E, B, ...)`` for the methods that need environments, and the
model-stacked batches ``(K, E, B, ...)`` of models trained side by side (:mod:`hvnotes.ensembles`).

Both are endless iterators seeded by their own generator (``seed``; None: the run's
``hvnotes.derive_seed(0)``), independent of the global RNG.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from hvnotes import seeding, validation


def minibatches(*tensors: Tensor, batch_size: int, seed: int | None = None) -> Iterator[tuple]:
    """Endless shuffled epochs of minibatches of tensors ``(N, ...)`` indexed together, seeded
    by ``seed`` (what :func:`hvnotes.train.fit` draws; the last batch of an epoch may be short)."""
    if not tensors:
        raise ValueError("minibatches needs at least one tensor (N, ...)")
    for i, t in enumerate(tensors):
        validation.check_tensor(f"tensor {i}", t)
        if len(t) != len(tensors[0]):
            raise ValueError(f"tensor {i} has {len(t)} rows, tensor 0 has {len(tensors[0])}")
    batch_size = validation.check_positive_int("batch_size", batch_size)
    return _minibatches(tensors, batch_size, seeding.generator(seed))


def _minibatches(tensors: tuple[Tensor, ...], batch_size: int, generator) -> Iterator[tuple]:
    """Endless shuffled epochs of minibatches of tensors indexed together."""
    n, device = len(tensors[0]), tensors[0].device
    while True:
        order = torch.randperm(n, generator=generator).to(device)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            yield tuple(t[idx] for t in tensors)


def env_batches(
    *envs: Tensor,
    batch_per_env: int | None = None,
    envs_per_step: int | None = None,
    seed: int | None = None,
) -> Iterator[tuple[Tensor, ...]]:
    """Endless environment-stacked batches from tensors ``(E, N, ...)`` indexed together.

    Each batch takes ``envs_per_step`` environments (all when None) without replacement and
    ``batch_per_env`` examples from each (all, in order, when None: full batch), so every tensor
    comes out as ``(envs_per_step, batch_per_env, ...)``. Seeded by ``seed`` (None: the run's
    ``hvnotes.derive_seed(0)``), independent of the global RNG.
    """
    if not envs:
        raise ValueError("env_batches needs at least one tensor (E, N, ...)")
    for i, t in enumerate(envs):
        validation.check_tensor(f"tensor {i}", t, min_ndim=2)
        if t.shape[1] == 0:
            raise ValueError(f"tensor {i} must hold at least one example per environment")
    n_envs, n_per_env = envs[0].shape[:2]
    for i, t in enumerate(envs):
        if t.shape[:2] != (n_envs, n_per_env):
            raise ValueError(
                f"every tensor must be stacked (E, N, ...) like the first {tuple(envs[0].shape[:2])}, "
                f"got {tuple(t.shape[:2])} for tensor {i}"
            )
    envs_per_step = (
        n_envs
        if envs_per_step is None
        else validation.check_positive_int("envs_per_step", envs_per_step)
    )
    if envs_per_step > n_envs:
        raise ValueError(
            f"envs_per_step must be <= {n_envs} (the data's size), got {envs_per_step}"
        )
    if batch_per_env is not None:
        batch_per_env = validation.check_positive_int("batch_per_env", batch_per_env)
        if batch_per_env > n_per_env:
            raise ValueError(
                f"batch_per_env must be <= {n_per_env} (the data's size), got {batch_per_env}"
            )
    generator, device = seeding.generator(seed), envs[0].device
    while True:
        if batch_per_env is None and envs_per_step == n_envs:
            yield envs
            continue
        chosen = torch.randperm(n_envs, generator=generator)[:envs_per_step]
        if batch_per_env is None:
            idx = torch.arange(n_per_env).expand(envs_per_step, -1)
        else:
            idx = torch.rand(envs_per_step, n_per_env, generator=generator).argsort(dim=1)
            idx = idx[:, :batch_per_env]
        chosen, idx = chosen.to(device), idx.to(device)
        yield tuple(t[chosen[:, None], idx] for t in envs)


def stacked_batches(
    x: Tensor, y: Tensor, batch_per_env: int, seed: int | None = None
) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless minibatches ``(K, E, B, ...)``, ``(K, E, B)`` from ``x`` ``(K, E, N, ...)``,
    ``y`` ``(K, E, N)``: every model and environment draws its own ``B`` examples without
    replacement, in epochs: a fresh order of each environment's examples, cut into batches
    (the last ``N mod B`` of an order are skipped). Seeded by ``seed``, independent of the
    global RNG."""
    k, e, n = y.shape
    if x.shape[:3] != y.shape:
        raise ValueError(f"x must be (K, E, N, ...) like y {tuple(y.shape)}, got {tuple(x.shape)}")
    batch = validation.check_positive_int("batch_per_env", batch_per_env)
    if batch > n:
        raise ValueError(f"batch_per_env must be <= {n} (examples per environment), got {batch}")
    generator = seeding.generator(seed)
    flat_x, flat_y = x.reshape(k * e * n, *x.shape[3:]), y.reshape(-1)
    start = (torch.arange(k * e, device=y.device) * n).view(k, e, 1)
    while True:  # one pass over every environment's examples in a fresh order, then again
        order = torch.rand(k, e, n, generator=generator).argsort(dim=2).to(y.device) + start
        for i in range(0, n - batch + 1, batch):
            idx = order[..., i : i + batch].reshape(-1)
            yield (flat_x.index_select(0, idx).view(k, e, batch, *x.shape[3:]),
                   flat_y.index_select(0, idx).view(k, e, batch))  # fmt: skip
