"""The one training loop of the course, and the small helpers every trainer shares.

:func:`run` is the loop: it takes batches, hands each to a ``step`` that updates the model and
returns the terms it wants logged, and every ``log_every`` steps writes one history row (the
terms' means, the training seconds, and an optional ``evaluate(model)``). Everything that trains
in the package is a thin layer over it:

* :func:`fit` — minibatch epochs over tensors indexed together, ``(x, y, *extras)``, with any
  ``loss_fn(model, *batch)`` (plain cross-entropy by default, the RRR loss, the SST loss);
  history per epoch, early stopping;
* :func:`env_batches` — the environment-stacked batches ``(E, B, ...)`` that the AND-mask
  (:func:`hvnotes.andmask.fit_and_mask`) and the benchmark (:func:`hvnotes.benchmark.train`) draw.

Progress bars come from ``tqdm.auto`` and are off when ``TQDM_DISABLE`` is set (tests, scripted
runs). :func:`evaluating`, :func:`predict` and :func:`accuracy` switch a model to eval mode and
always restore it; a plain callable that maps inputs to logits works wherever only outputs are
needed (Captum's ``forward_func`` convention).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from hvnotes import seeding

#: ``loss_fn(model, *batch) -> Tensor`` (the loss), or a dict of named terms whose ``"loss"`` is
#: backpropagated and whose every entry is logged; a tuple led by the loss also works.
LossFn = Callable[..., Tensor | Mapping[str, Tensor] | tuple]


def show(progress: bool) -> bool:
    """Whether to draw a progress bar: asked for, and not switched off by ``TQDM_DISABLE``.

    tqdm's notebook widgets ignore ``TQDM_DISABLE``, so we read it here: scripted runs and tests
    set it, and committed notebooks then carry no frozen progress bars.
    """
    return bool(progress) and os.environ.get("TQDM_DISABLE", "").lower() in ("", "0", "false")


# ----------------------------------------------------------------------------- checks


def check_tensor(name: str, value, *, ndim: int | None = None, finite: bool = True) -> Tensor:
    """``value`` as a non-empty Tensor (NaN/inf rejected when ``finite``), else a clear error."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.ndim == 0 or len(value) == 0:
        raise ValueError(f"{name} must hold at least one row, got shape {tuple(value.shape)}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(value.shape)}")
    if finite and value.is_floating_point() and not torch.isfinite(value).all():
        raise ValueError(f"{name} holds NaN or inf values")
    return value


def check_number(name: str, value, *, low: float = -math.inf, positive: bool = False) -> float:
    """``value`` as a finite float (NumPy scalars welcome), at least ``low`` (or > 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < low or (positive and value <= 0):
        bound = "> 0" if positive else f">= {low}" if low > -math.inf else "finite"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def check_mask(name: str, mask, x: Tensor, hint: str) -> Tensor:
    """``mask``, a Tensor that broadcasts to ``x`` without changing ``x``'s shape, else a clear
    error (``hint`` says what to pass instead)."""
    if not isinstance(mask, Tensor):
        raise TypeError(
            f"{name} must be a Tensor broadcastable to x {tuple(x.shape)}, got {type(mask).__name__}"
        )
    try:
        shape = torch.broadcast_shapes(mask.shape, x.shape)
    except RuntimeError:
        shape = None
    if shape != x.shape:
        raise ValueError(
            f"{name} of shape {tuple(mask.shape)} does not broadcast to x of shape "
            f"{tuple(x.shape)}: {hint}"
        )
    return mask


def check_stacked(xs, ys) -> tuple[int, int]:
    """``(E, B)`` of env-stacked ``xs`` ``(E, B, ...)`` and ``ys`` ``(E, B, ...)``, else a clear error."""
    for name, t in (("xs", xs), ("ys", ys)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a Tensor of shape (E, B, ...), got {type(t).__name__}")
        if t.ndim < 2 or t.shape[0] < 1 or t.shape[1] < 1:
            raise ValueError(
                f"{name} must be env-stacked with shape (E, B, ...), E, B >= 1; "
                f"got {tuple(t.shape)}"
            )
    if xs.shape[:2] != ys.shape[:2]:
        raise ValueError(
            "xs and ys must be stacked alike, (E, B, ...) with the same E and B; "
            f"got xs {tuple(xs.shape)} and ys {tuple(ys.shape)}"
        )
    return xs.shape[0], xs.shape[1]


def check_input_dtype(model, x: Tensor) -> None:
    """A clear error when ``x`` cannot go through ``model`` (float64 into float32 weights...)."""
    if not isinstance(model, nn.Module):
        return
    param = next(iter(model.parameters()), None)
    if param is None:
        return
    if x.is_floating_point() and x.dtype != param.dtype:
        raise TypeError(
            f"x has dtype {x.dtype} but the model's parameters are {param.dtype}: "
            f"convert one of them (x.to({param.dtype}) or model.to({x.dtype}))"
        )
    if x.device != param.device:
        raise ValueError(f"x is on {x.device} but the model is on {param.device}: move one of them")


def check_optimizer(optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
    """The optimizer must update the model's parameters (not another model's)."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    mine = {id(p) for p in model.parameters() if p.requires_grad}
    theirs = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if mine and not mine & theirs:
        raise ValueError("optimizer does not update any of the model's parameters")


# ----------------------------------------------------------------------------- eval mode


@contextlib.contextmanager
def evaluating(model):
    """Put ``model`` in eval mode for the block and restore its mode after, even on an error.

    A plain callable (no ``.train``/``.eval``) passes through unchanged.
    """
    if not isinstance(model, nn.Module):
        yield model
        return
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def cross_entropy(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy of ``model(x)`` (logits ``(B, C)``) against labels ``y`` ``(B,)``."""
    return nn.functional.cross_entropy(model(x), y)


@torch.no_grad()
def predict(model, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Predicted classes ``(N,)`` for inputs ``(N, ...)``, computed in eval mode in batches.

    ``model`` may be a module or any callable mapping inputs to logits ``(B, C)``.
    """
    check_tensor("x", x)
    check_input_dtype(model, x)
    with evaluating(model):
        preds = [model(x[i : i + batch_size]).argmax(dim=1) for i in range(0, len(x), batch_size)]
    return torch.cat(preds)


def accuracy(model, x: Tensor, y: Tensor) -> float:
    """Fraction of rows of ``x`` ``(N, ...)`` whose predicted class equals ``y`` ``(N,)``."""
    check_tensor("y", y, ndim=1)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    return (predict(model, x) == y).float().mean().item()


# ----------------------------------------------------------------------------- the loop


def run(
    step: Callable[..., Mapping[str, float]],
    batches: Iterable[tuple[Tensor, ...]],
    *,
    steps: int,
    log_every: int,
    evaluate: Callable[[], Mapping[str, float]] | None = None,
    on_row: Callable[[dict], bool] | None = None,
    progress: bool = True,
    desc: str = "steps",
    clock: Callable[[], float] = time.perf_counter,
    log_steps: bool = False,
) -> pd.DataFrame:
    """Run ``steps`` training steps and return the history.

    Args:
        step: ``step(*batch) -> {term: float}``: one update; the terms are logged.
        batches: yields the batches (tuples of tensors), at least ``steps`` of them.
        log_every: one history row every ``log_every`` steps, and one after the last step.
        evaluate: ``evaluate() -> {column: float}``, added to every row (not timed).
        on_row: called with each new row; returning True stops training after that row.
        clock: measures the training time of each row's steps (``time.process_time`` on a
            shared CPU counts this process only).
        log_steps: also keep every step's terms, in ``history.attrs["steps"]``.

    Returns:
        a DataFrame with one row per log: ``step`` (steps done), the mean of every term over the
        row's steps, ``seconds`` (their training time) and the ``evaluate`` columns.
    """
    steps, log_every = (
        check_positive_int("steps", steps),
        check_positive_int("log_every", log_every),
    )
    rows, window, every_step, seconds = [], [], [], 0.0
    batches = iter(batches)
    for done in tqdm(range(1, steps + 1), desc=desc, leave=False, disable=not show(progress)):
        start = clock()
        terms = dict(step(*next(batches)))
        seconds += clock() - start
        window.append(terms)
        if log_steps:
            every_step.append(terms)
        if done % log_every == 0 or done == steps:
            row = {"step": done}
            row.update({k: sum(t[k] for t in window) / len(window) for k in window[0]})
            row["seconds"] = seconds
            row.update(evaluate() if evaluate is not None else {})
            rows.append(row)
            window, seconds = [], 0.0
            if on_row is not None and on_row(row):
                break
    history = pd.DataFrame(rows)
    if log_steps:
        history.attrs["steps"] = pd.DataFrame(every_step).rename_axis("step")
    return history


def _as_terms(out) -> dict[str, Tensor]:
    """A loss function's output as named terms with the backpropagated ``"loss"`` first."""
    if isinstance(out, Mapping):
        if "loss" not in out:
            raise ValueError(
                f"a loss_fn that returns a dict must name the loss 'loss', got {list(out)}"
            )
        return dict(out)
    if isinstance(out, tuple):
        return {"loss": out[0]}
    return {"loss": out}


def _minibatches(tensors: tuple[Tensor, ...], batch_size: int, generator) -> Iterator[tuple]:
    """Endless shuffled epochs of minibatches of tensors indexed together."""
    n, device = len(tensors[0]), tensors[0].device
    while True:
        order = torch.randperm(n, generator=generator).to(device)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            yield tuple(t[idx] for t in tensors)


def fit(
    model: nn.Module,
    *data: Tensor,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    loss_fn: LossFn = cross_entropy,
    optimizer: torch.optim.Optimizer | None = None,
    eval_sets: Mapping[str, tuple[Tensor, Tensor]] | None = None,
    evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None,
    patience: int | None = None,
    monitor: str | None = None,
    seed: int | None = None,
    progress: bool = True,
    clock: Callable[[], float] = time.perf_counter,
    log_steps: bool = False,
) -> pd.DataFrame:
    """Train ``model`` on tensors indexed together, ``(x, y, *extras)``, and return its history.

    Args:
        model: any module; trained in place.
        data: ``x`` ``(N, ...)``, ``y`` ``(N,)`` and any extra tensors ``(N, ...)`` (per-row
            annotations, say), on the model's device; each minibatch indexes all of them alike.
        epochs, batch_size, lr: the usual; the optimizer is Adam unless ``optimizer`` is given.
        weight_decay: L2 penalty of the default Adam (coupled, as in the papers' ``λ‖θ‖²``).
        loss_fn: ``loss_fn(model, *batch)`` returning the loss, or a dict of named terms with
            ``"loss"`` (every term gets a history column: its mean over the epoch).
        eval_sets: name -> ``(x, y)``; each gets an ``acc_<name>`` column per epoch.
        evaluate: ``evaluate(model) -> {column: value}`` after every epoch, and once before the
            first (an epoch-0 row with NaN loss); never counted in ``seconds``.
        patience: stop when ``monitor`` has not improved for this many epochs (None: never); the
            best epoch's weights are restored.
        monitor: the column early stopping watches (default: the first eval set's accuracy);
            columns with "loss" in their name improve downwards, the others upwards.
        seed: seeds the shuffling of minibatches (independent of the global RNG; None: the run's
            ``hvnotes.derive_seed(0)``).
        clock: times the training of each epoch (the ``seconds`` column).
        log_steps: keep every optimizer step's terms in ``history.attrs["steps"]``.

    Returns:
        DataFrame with one row per epoch: ``epoch``, one column per loss term (``loss``, ...),
        ``seconds``, ``acc_<name>`` for every eval set and the ``evaluate`` columns.
    """
    if not data:
        raise ValueError("fit needs the data: fit(model, x, y, ...)")
    for i, t in enumerate(data):
        check_tensor("x" if i == 0 else "y" if i == 1 else f"data[{i}]", t)
        if len(t) != len(data[0]):
            raise ValueError(
                f"x and y must have the same length, got {len(data[0])} and {len(t)} (data[{i}])"
            )
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    check_number("lr", lr, positive=True)
    check_number("weight_decay", weight_decay, low=0.0)
    check_input_dtype(model, data[0])
    eval_sets = dict(eval_sets or {})
    if patience is not None:
        monitor = monitor or (f"acc_{next(iter(eval_sets))}" if eval_sets else None)
        if monitor is None:
            raise ValueError("patience needs eval_sets (or a monitor column) to watch")
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    check_optimizer(optimizer, model)
    generator = seeding.generator(seed)
    per_epoch = -(-len(data[0]) // batch_size)

    def step(*batch) -> dict[str, float]:
        model.train()
        terms = _as_terms(loss_fn(model, *batch))
        loss = terms["loss"]
        if not torch.isfinite(loss):
            raise ValueError(f"the loss became {loss.item()}: check the data and lr={lr}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {
            k: float(v.detach()) if isinstance(v, Tensor) else float(v) for k, v in terms.items()
        }

    def measure() -> dict[str, float]:
        out = {f"acc_{name}": accuracy(model, *xy) for name, xy in eval_sets.items()}
        return out | (dict(evaluate(model)) if evaluate is not None else {})

    best = {"value": None, "state": None, "stale": 0}
    down = monitor is not None and "loss" in monitor

    def early_stop(row: dict) -> bool:
        if patience is None:
            return False
        value = row[monitor] if not down else -row[monitor]
        if best["value"] is None or value > best["value"]:
            best.update(value=value, stale=0)
            best["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        best["stale"] += 1
        return best["stale"] >= patience

    start = [{"step": 0, "loss": float("nan"), "seconds": 0.0} | measure()] if evaluate else []
    history = run(
        step, _minibatches(data, batch_size, generator), steps=epochs * per_epoch,
        log_every=per_epoch, evaluate=measure, on_row=early_stop, progress=progress,
        desc="epochs", clock=clock, log_steps=log_steps,
    )  # fmt: skip
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    steps = history.attrs.get("steps")
    history = pd.concat([pd.DataFrame(start), history], ignore_index=True)
    history.insert(0, "epoch", (history.pop("step") // per_epoch).astype(int))
    if steps is not None:
        history.attrs["steps"] = steps
    return history


# ----------------------------------------------------------------------------- environments


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
    n_envs, n_per_env = envs[0].shape[:2]
    for i, t in enumerate(envs):
        if t.shape[:2] != (n_envs, n_per_env):
            raise ValueError(
                f"every tensor must be stacked (E, N, ...) like the first {tuple(envs[0].shape[:2])}, "
                f"got {tuple(t.shape[:2])} for tensor {i}"
            )
    envs_per_step = (
        n_envs if envs_per_step is None else check_positive_int("envs_per_step", envs_per_step)
    )
    if envs_per_step > n_envs:
        raise ValueError(
            f"envs_per_step must be <= {n_envs} (the data's size), got {envs_per_step}"
        )
    if batch_per_env is not None:
        batch_per_env = check_positive_int("batch_per_env", batch_per_env)
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
