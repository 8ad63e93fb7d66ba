"""The AND-mask (Parascandolo et al., ICLR 2021): keep only the gradient components on which
every environment agrees.

Averaging per-environment gradients is a logical OR: a component that helps one environment
moves the weights even if no other environment cares. The AND-mask zeroes every component whose
per-environment gradient signs do not agree well enough, so only what is shared gets learned.

Environments are stacked on the first axis everywhere in this module:

* inputs ``xs`` ``(E, B, ...)`` and targets ``ys`` ``(E, B, ...)``: ``B`` examples of each of
  ``E`` environments;
* per-environment gradients ``(E, *param.shape)``.

Losses are ``loss_fn(output, target) -> scalar``, the *mean* over the examples it is given
(``torch.nn.functional.cross_entropy``, ``mse_loss``, ...).

This module trains with the mask: a loop (:func:`fit_and_mask`, the algorithms of
:mod:`hvnotes.algorithms` run by the package's one loop) and notebook 02's spirals recipe
(:func:`fit_spirals`). Each of its other ideas has a module of its own, and every name is
re-exported here (``andmask.and_mask`` and the twins' targets ``hvnotes.andmask:...`` keep
working):

* :mod:`hvnotes.masked_step`: one AND-masked training step (:func:`and_mask_step`);
* :mod:`hvnotes.agreement`: the mask and its relatives (:func:`and_mask`,
  :func:`agreement_mask`, :func:`masked_gradient`, :func:`sand_mask`, the random-mask twins);
* :mod:`hvnotes.env_gradients`: per-environment gradients with ``torch.func``
  (:func:`env_gradients`), and :mod:`hvnotes.pooled` their fast path for MLPs;
* :mod:`hvnotes.temporal`: :class:`TemporalAndMaskAdam`, agreement over time when each step sees
  a single environment;
* :mod:`hvnotes.random_gradients`: how fast the masked update of random gradients vanishes
  (:func:`keep_probability`, :func:`pass_probability`, :func:`random_gradient_norms`).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import torch
from torch import Tensor, nn

from hvnotes import algorithms, seeding, validation
from hvnotes.agreement import (  # noqa: F401  (re-exported: their old home)
    METHODS,
    _check_env_grads,
    _check_flag,
    _check_fraction,
    _check_method,
    _check_tau,
    _combine,
    _fraction_for,
    _need_generator,
    _rescale,
    _sign_count,
    _twin_mask,
    agreement_mask,
    and_mask,
    masked_gradient,
    random_mask,
    random_mask_like,
    required_agreement,
    sand_mask,
)
from hvnotes.env_gradients import (  # noqa: F401  (re-exported: their old home)
    _env_gradients_and_losses,
    _trainable,
    env_gradients,
)
from hvnotes.masked_step import (  # noqa: F401  (re-exported: their old home)
    LossFn,
    _check_class_labels,
    _is_cross_entropy,
    _pooled_step,
    and_mask_step,
)
from hvnotes.pooled import (  # noqa: F401  (re-exported: their old home)
    pooled_env_gradients,
    pooled_sign_counts,
    supports_pooled,
)
from hvnotes.random_gradients import (  # noqa: F401  (re-exported: their old home)
    keep_probability,
    pass_probability,
    random_gradient_norms,
)
from hvnotes.temporal import (  # noqa: F401  (re-exported: their old home)
    TemporalAndMaskAdam,
)
from hvnotes.train import (
    accuracy,
    check_optimizer,
    check_positive_int,
    check_stacked,
    env_batches,
    run,
)

#: the algorithm that trains each ``method`` of :func:`fit_and_mask`
_ALGORITHM_OF = {
    "and": "ANDMask", "geom": "GeometricMean", "sand": "SANDMask", "random": "RandomMask",
}  # fmt: skip


def fit_and_mask(
    model: nn.Module,
    loss_fn: LossFn,
    x_envs: Tensor,
    y_envs: Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    steps: int,
    tau: float,
    method: str = "and",
    rescale: bool = False,
    k: float = 10.0,
    keep: float | Mapping[str, float] | None = None,
    batch_per_env: int = 32,
    envs_per_step: int | None = None,
    eval_sets: Mapping[str, tuple[Tensor, Tensor]] | None = None,
    eval_every: int = 100,
    seed: int | None = None,
) -> pd.DataFrame:
    """Train with :func:`and_mask_step` for ``steps`` steps and return the history: the
    algorithm of ``method`` (:class:`hvnotes.algorithms.ANDMask`, ``GeometricMean``,
    ``SANDMask`` or the twin ``RandomMask``) run by ``run(algorithm.update, env_batches(...))``.

    Each step draws ``envs_per_step`` environments (all when None) without replacement and
    ``batch_per_env`` examples from each, so the step sees an env-stacked batch
    ``(envs_per_step, batch_per_env, ...)``. With ``tau=0`` this is plain ERM on the same
    batches, the baseline to compare against.

    Args:
        x_envs: ``(E, N, ...)``, ``N`` examples for each of ``E`` environments; ``y_envs``
            ``(E, N, ...)``.
        optimizer: any optimizer (its weight decay acts after the mask).
        eval_sets: name -> ``(x, y)`` with plain batches ``(M, ...)``; accuracy (argmax of the
            output) is logged as ``acc_<name>`` every ``eval_every`` steps and at the end.
        seed: seeds the sampling of environments and examples, and the random mask's positions
            for ``method="random"`` (None: the run's ``hvnotes.derive_seed(0)``).
        keep: ``method="random"`` only: fixed kept fractions (see :func:`and_mask_step`).

    Speed: weight decay drives masked weights towards zero, into the denormal range, where CPU
    arithmetic is several times slower; ``hvnotes.setup`` flushes denormals to zero for the
    whole notebook (this function changes no global state).

    Returns:
        DataFrame with one row per evaluation (:func:`hvnotes.train.run`): ``step``, ``loss``
        (mean since the last row), ``kept`` (mean kept fraction over parameters),
        ``kept_<param>`` per parameter, ``seconds`` and ``acc_<name>``.
    """
    check_stacked(x_envs, y_envs)
    validation.check_model("model", model, module=True)
    check_optimizer(optimizer, model)
    _check_tau(tau)
    _check_method(method)
    _check_flag("rescale", rescale)
    eval_sets = dict(eval_sets or {})
    hparams = {"tau": tau, "rescale": rescale} | ({"k": k} if method == "sand" else {})
    cls, twin = getattr(algorithms, _ALGORITHM_OF[method]), {}
    if method == "random":  # its positions: a stream of its own, seeded like the batches
        hparams["seed"], twin["keep"] = seed, keep
    algorithm = cls(model, hparams, loss_fn=loss_fn, optimizer=optimizer, **twin)

    def step(xs: Tensor, ys: Tensor) -> dict[str, float]:
        terms = algorithm.update(xs, ys)
        return {name: v for name, v in terms.items() if name != "kept"}  # kept: mean of tensors

    def evaluate() -> dict[str, float]:
        return {f"acc_{name}": accuracy(model, *xy) for name, xy in eval_sets.items()}

    batches = env_batches(
        x_envs, y_envs, batch_per_env=batch_per_env, envs_per_step=envs_per_step, seed=seed
    )
    log_every = check_positive_int("eval_every", eval_every)
    with validation.preserved_mode(model):  # each step trains in train mode; the caller's is kept
        history = run(
            step, batches, steps=steps, log_every=log_every, evaluate=evaluate, progress=False
        )
    kept = [c for c in history.columns if c.startswith("kept_")]
    history.insert(2, "kept", history[kept].mean(axis=1))
    return history


def fit_spirals(
    data,
    tau: float,
    *,
    method: str = "and",
    seed: int | None = None,
    steps: int = 400,
    batch_per_env: int = 128,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    hidden: tuple[int, ...] = (64, 64),
    rescale: bool = True,
    k: float = 10.0,
    keep: float | Mapping[str, float] | None = None,
    eval_every: int = 50,
) -> tuple[nn.Sequential, pd.DataFrame]:
    """Notebook 02's recipe for the spirals benchmark: a ReLU MLP trained by :func:`fit_and_mask`.

    Adam (``lr``; ``weight_decay`` is its L2 term, added to the masked gradient inside the step,
    so it acts *after* the mask), per-tensor rescaling by the inverse kept fraction, every
    environment in every step with ``batch_per_env`` examples each. ``tau = 0`` is ERM on the
    same batches; ``method="random"`` the AND-mask's null twin (with ``keep``: at fixed kept
    fractions, e.g. an AND-mask run's averages ``{name: fraction}``).

    Args:
        data: a :class:`hvnotes.datasets.SpiralEnvs` (``x_train`` ``(E, N, F)``).
        seed: the initialisation, the batches and the random mask's positions (None: the run's
            ``hvnotes.derive_seed(0)``).

    Returns:
        ``(model, history)``; the history (:func:`fit_and_mask`) logs ``acc_train`` (the pooled
        training set) and ``acc_test`` (the shifted test set) every ``eval_every`` steps.
    """
    from hvnotes import models

    seed = seeding.resolve_seed(seed)
    with seeding.torch_seed(seed):
        model = models.mlp(data.x_train.shape[-1], hidden, 2).to(data.x_train.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = fit_and_mask(
        model,
        nn.functional.cross_entropy,
        data.x_train,
        data.y_train,
        optimizer,
        steps=steps,
        tau=tau,
        method=method,
        rescale=rescale,
        k=k,
        keep=keep,
        batch_per_env=batch_per_env,
        eval_sets={
            "train": (data.x_train.flatten(0, 1), data.y_train.flatten()),
            "test": (data.x_test, data.y_test),
        },
        eval_every=eval_every,
        seed=seed,
    )
    return model, history


def kept_fractions(history: pd.DataFrame) -> dict[str, float]:
    """Each parameter's kept fraction averaged over a :func:`fit_and_mask` history: ``{name:
    fraction}``, the ``keep`` that gives a random-mask twin the same sparsity on average."""
    columns = [c for c in history.columns if c.startswith("kept_")]
    if not columns:
        raise ValueError("history has no kept_<parameter> columns (not from fit_and_mask?)")
    return {c.removeprefix("kept_"): float(history[c].mean()) for c in columns}
