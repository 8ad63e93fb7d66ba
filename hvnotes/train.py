"""The one training loop of the course, and the small helpers every trainer shares.

:func:`run` is the loop: it takes batches, hands each to a ``step`` that updates the model and
returns the terms it wants logged, and every ``log_every`` steps writes one history row (the
terms' means, the training seconds, and an optional ``evaluate(model)``). Everything that trains
in the package is a thin layer over it:

* :func:`fit_algorithm` — minibatch epochs of any algorithm over tensors indexed together,
  ``(x, y, *extras)``: history per epoch, early stopping (:func:`hvnotes.rrr.fit_rrr`,
  :func:`hvnotes.sst.train_sst`);
* :func:`fit` — the same for a plain model, with cross-entropy (ERM) or any
  ``loss_fn(model, *batch)`` of one's own (:class:`hvnotes.algorithms.Objective`);
* :func:`env_batches` — the environment-stacked batches ``(E, B, ...)`` that the AND-mask
  (:func:`hvnotes.andmask.fit_and_mask`) draws; the benchmark's model-stacked ones are
  :func:`hvnotes.batches.stacked_batches`.

Every method of :mod:`hvnotes.algorithms` trains through :func:`run` as
``run(algorithm.update, batches)``. Progress bars come from ``tqdm.auto`` and are off when
``TQDM_DISABLE`` is set (tests, scripted runs). :func:`predict` and :func:`accuracy` (in
:mod:`hvnotes.evaluation`, re-exported here) switch a model to eval mode and always restore it (:func:`fit` restores the caller's mode
too); a plain callable that maps inputs to logits works wherever only outputs are needed (Captum's
``forward_func`` convention). Arguments are checked by :mod:`hvnotes.validation` before anything
is trained; its checks are importable from here under their old names.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping

import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from hvnotes import seeding, validation
from hvnotes.algorithms import ERM, Algorithm, Objective
from hvnotes.batches import _minibatches, env_batches, minibatches  # noqa: F401 (their old home)
from hvnotes.evaluation import (  # noqa: F401  (re-exported: their old home)
    _predicted_classes,
    accuracy,
    cross_entropy,
    predict,
)
from hvnotes.validation import (  # noqa: F401  (re-exported: the old home of these checks)
    check_input_dtype,
    check_number,
    check_optimizer,
    check_positive_int,
    check_stacked,
    check_tensor,
    evaluating,
)

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
# The checks live in :mod:`hvnotes.validation`; these names stay importable from here.


def check_mask(name: str, mask, x: Tensor, hint: str) -> Tensor:
    """``mask``, a Tensor that broadcasts to ``x`` without changing ``x``'s shape
    (:func:`validation.check_mask` with ``broadcast="any"``); ``hint`` says what to pass instead."""
    return validation.check_mask(name, mask, x, hint, broadcast="any")


# ----------------------------------------------------------------------------- the loop


def run(
    step: Callable[..., Mapping[str, float]],
    batches: Iterable[tuple[Tensor, ...]],
    *,
    steps: int | None = None,
    log_every: int | None = None,
    evaluate: Callable[[], Mapping[str, float]] | None = None,
    on_row: Callable[[dict], bool] | None = None,
    progress: bool = True,
    desc: str = "steps",
    clock: Callable[[], float] = time.perf_counter,
    log_steps: bool = False,
) -> pd.DataFrame:
    """Run ``steps`` training steps and return the history.

    ``run(algorithm.update, batches)`` trains any :class:`hvnotes.algorithms.Algorithm` on a
    finite iterable of batches, one history row at the end.

    Args:
        step: ``step(*batch) -> {term: float}``: one update; the terms are logged.
        batches: yields the batches (tuples of tensors), at least ``steps`` of them.
        steps: how many steps (None: one per batch, until ``batches`` ends; it must end).
        log_every: one history row every ``log_every`` steps, and one after the last step
            (None: only the one after the last step).
        evaluate: ``evaluate() -> {column: float}``, added to every row (not timed).
        on_row: called with each new row; returning True stops training after that row.
        clock: measures the training time of each row's steps (``time.process_time`` on a
            shared CPU counts this process only).
        log_steps: also keep every step's terms, in ``history.attrs["steps"]``.

    Returns:
        a DataFrame with one row per log: ``step`` (steps done), the mean of every term over the
        row's steps, ``seconds`` (their training time) and the ``evaluate`` columns.
    """
    validation.check_callable("step", step)
    if steps is not None:
        steps = check_positive_int("steps", steps)
    if log_every is not None:
        log_every = check_positive_int("log_every", log_every)
    for name, fn in (("evaluate", evaluate), ("on_row", on_row)):
        if fn is not None:
            validation.check_callable(name, fn)
    try:
        batches = iter(batches)
    except TypeError:
        raise TypeError(
            f"batches must be an iterable of batches (tuples of tensors), got "
            f"{type(batches).__name__}"
        ) from None
    rows, window, every_step, seconds = [], [], [], 0.0

    def log(done: int) -> bool:
        nonlocal window, seconds
        row = {"step": done}
        row.update({k: sum(t[k] for t in window) / len(window) for k in window[0]})
        row["seconds"] = seconds
        row.update(evaluate() if evaluate is not None else {})
        rows.append(row)
        window, seconds = [], 0.0
        return on_row is not None and bool(on_row(row))

    bar = tqdm(total=steps, desc=desc, leave=False, disable=not show(progress))
    done = 0
    while steps is None or done < steps:
        start = clock()
        try:
            batch = next(batches)
        except StopIteration:
            if steps is not None:
                raise ValueError(
                    f"batches ran out after {done} step(s); steps={steps} needs as many batches"
                ) from None
            if window:
                log(done)
            break
        terms = step(*batch)
        if not isinstance(terms, Mapping):
            raise TypeError(
                f"step must return a dict of logged terms {{name: float}}, got "
                f"{type(terms).__name__}"
            )
        terms = dict(terms)
        seconds += clock() - start
        done += 1
        bar.update()
        window.append(terms)
        if log_steps:
            every_step.append(terms)
        if (log_every is not None and done % log_every == 0) or done == steps:
            if log(done):
                break
    bar.close()
    history = pd.DataFrame(rows)
    if log_steps:
        history.attrs["steps"] = pd.DataFrame(every_step).rename_axis("step")
    return history


def _check_eval_sets(eval_sets) -> dict[str, tuple[Tensor, Tensor]]:
    """``eval_sets`` as a dict name -> ``(x, y)`` of inputs and class labels of equal length."""
    if eval_sets is None:
        return {}
    if not isinstance(eval_sets, Mapping):
        raise TypeError(f"eval_sets must be a dict name -> (x, y), got {type(eval_sets).__name__}")
    for name, pair in eval_sets.items():
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise TypeError(f"eval_sets[{name!r}] must be a pair (x, y) of tensors")
        check_tensor(f"eval_sets[{name!r}] x", pair[0])
        validation.check_labels(f"eval_sets[{name!r}] y", pair[1], n=len(pair[0]))
    return dict(eval_sets)


def _check_monitor(monitor: str, start: list[dict], eval_sets, only_loss: bool) -> None:
    """Before training: ``monitor`` must name a column the history will have. With a custom
    ``loss_fn`` its terms are known only after a step, so a name that may be one waits."""
    known = {"loss", "seconds"} | {f"acc_{name}" for name in eval_sets}
    known |= set(start[0]) - {"step"} if start else set()
    if monitor not in known and (only_loss or monitor.startswith("acc_")):
        raise ValueError(
            f"monitor={monitor!r} is not a column of the history; its columns will be "
            f"{sorted(known)}" + ("" if eval_sets else " (pass eval_sets to get acc_<name>)")
        )


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

    The default loss trains :class:`hvnotes.algorithms.ERM`; any other ``loss_fn`` an
    :class:`hvnotes.algorithms.Objective`; both through :func:`fit_algorithm`.

    Args:
        model: any module; trained in place.
        data: ``x`` ``(N, ...)``, ``y`` ``(N,)`` and any extra tensors ``(N, ...)`` (per-row
            annotations, say), on the model's device; each minibatch indexes all of them alike.
        epochs, batch_size, lr: the usual; the optimizer is Adam unless ``optimizer`` is given.
        weight_decay: L2 penalty of the default Adam (coupled, as in the papers' ``λ‖θ‖²``).
        loss_fn: ``loss_fn(model, *batch)`` returning the loss, or a dict of named terms with
            ``"loss"`` (every term gets a history column: its mean over the epoch).
        eval_sets, evaluate, patience, monitor, seed, progress, clock, log_steps: as in
            :func:`fit_algorithm`.

    Returns:
        DataFrame with one row per epoch: ``epoch``, one column per loss term (``loss``, ...),
        ``seconds``, ``acc_<name>`` for every eval set and the ``evaluate`` columns.
    """
    validation.check_model("model", model, module=True)
    check_number("lr", lr, positive=True)
    check_number("weight_decay", weight_decay, low=0.0)
    validation.check_callable("loss_fn", loss_fn)
    _check_data(model, data)
    if loss_fn is cross_entropy:  # the default: class labels, checked against the model's outputs
        if len(data) != 2:
            raise ValueError(
                f"fit with the default cross-entropy takes (x, y), got {len(data)} tensors: "
                "give a loss_fn that uses the extra ones"
            )
        classes = _predicted_classes(model, data[0][:1], 1)[1]
        validation.check_labels("y", data[1], classes=classes, long=True)
    hparams = None
    if optimizer is None:
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError("model has no trainable parameters (requires_grad) to fit")
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        hparams = {"lr": lr, "weight_decay": weight_decay}
    if loss_fn is cross_entropy:
        algorithm = ERM(model, hparams, optimizer=optimizer)
    else:
        algorithm = Objective(model, loss_fn, hparams, optimizer=optimizer, argument="loss_fn")
    return fit_algorithm(
        algorithm, *data, epochs=epochs, batch_size=batch_size, eval_sets=eval_sets,
        evaluate=evaluate, patience=patience, monitor=monitor, seed=seed, progress=progress,
        clock=clock, log_steps=log_steps,
    )  # fmt: skip


def _check_data(model: nn.Module, data: tuple) -> None:
    """``data``: at least ``x``; every tensor checked and as long as ``x``, ``x``'s dtype the
    model's."""
    if not data:
        raise ValueError("fit needs the data: fit(model, x, y, ...)")
    for i, t in enumerate(data):
        check_tensor("x" if i == 0 else "y" if i == 1 else f"data[{i}]", t)
        if len(t) != len(data[0]):
            raise ValueError(
                f"x and y must have the same length, got {len(data[0])} and {len(t)} (data[{i}])"
            )
    check_input_dtype(model, data[0])


def fit_algorithm(
    algorithm,
    *data: Tensor,
    epochs: int = 10,
    batch_size: int = 256,
    eval_sets: Mapping[str, tuple[Tensor, Tensor]] | None = None,
    evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None,
    patience: int | None = None,
    monitor: str | None = None,
    seed: int | None = None,
    progress: bool = True,
    clock: Callable[[], float] = time.perf_counter,
    log_steps: bool = False,
) -> pd.DataFrame:
    """Minibatch epochs of ``run(algorithm.update, batches)`` over tensors indexed together.

    Args:
        algorithm: an :class:`hvnotes.algorithms.Algorithm` on plain batches; its network is
            trained in place (in train mode; the caller's mode is restored after).
        data: ``x`` ``(N, ...)``, ``y`` ``(N,)`` and any extra tensors ``(N, ...)`` the update
            takes (per-row annotations, say); each minibatch indexes all of them alike.
        eval_sets: name -> ``(x, y)``; each gets an ``acc_<name>`` column per epoch.
        evaluate: ``evaluate(network) -> {column: value}`` after every epoch, and once before
            the first (an epoch-0 row with NaN loss); never counted in ``seconds``.
        patience: stop when ``monitor`` has not improved for this many epochs (None: never); the
            best epoch's weights are restored.
        monitor: the column early stopping watches (default: the first eval set's accuracy);
            columns with "loss" in their name improve downwards, the others upwards.
        seed: seeds the shuffling of minibatches (independent of the global RNG; None: the run's
            ``hvnotes.derive_seed(0)``).
        clock: times the training of each epoch (the ``seconds`` column).
        log_steps: keep every update's terms in ``history.attrs["steps"]``.

    Returns:
        DataFrame with one row per epoch: ``epoch``, the mean of every logged term (``loss``,
        ...), ``seconds``, ``acc_<name>`` for every eval set and the ``evaluate`` columns.
    """
    if not isinstance(algorithm, Algorithm):
        raise TypeError(
            f"algorithm must be an hvnotes.algorithms.Algorithm, got {type(algorithm).__name__}"
        )
    if algorithm.stacked:
        raise ValueError(
            f"fit_algorithm draws plain minibatches (B, ...); {algorithm.name} takes "
            "environment-stacked ones: train it with run(algorithm.update, env_batches(...))"
        )
    model = algorithm.network
    _check_data(model, data)
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    if evaluate is not None:
        validation.check_callable("evaluate", evaluate)
    eval_sets = _check_eval_sets(eval_sets)
    only_loss = isinstance(algorithm, ERM)  # logs "loss" alone: other monitors are known now
    if patience is not None:
        patience = check_positive_int("patience", patience)
        monitor = monitor or (f"acc_{next(iter(eval_sets))}" if eval_sets else None)
        if monitor is None:
            raise ValueError("patience needs eval_sets (or a monitor column) to watch")
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a column name (str), got {type(monitor).__name__}")
    generator = seeding.generator(seed)
    per_epoch = -(-len(data[0]) // batch_size)

    def measure() -> dict[str, float]:
        out = {f"acc_{name}": accuracy(model, *xy) for name, xy in eval_sets.items()}
        return out | (dict(evaluate(model)) if evaluate is not None else {})

    best = {"value": None, "state": None, "stale": 0}
    down = monitor is not None and "loss" in monitor

    def early_stop(row: dict) -> bool:
        if patience is None:
            return False
        if monitor not in row:
            raise ValueError(
                f"monitor={monitor!r} is not a column of the history; its columns are "
                f"{[c for c in row if c != 'step']}"
            )
        value = row[monitor] if not down else -row[monitor]
        if best["value"] is None or value > best["value"]:
            best.update(value=value, stale=0)
            best["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        best["stale"] += 1
        return best["stale"] >= patience

    with validation.preserved_mode(model):  # fit trains in train mode; the caller's mode is kept
        start = [{"step": 0, "loss": float("nan"), "seconds": 0.0} | measure()] if evaluate else []
        if patience is not None:
            _check_monitor(monitor, start, eval_sets, only_loss)
        history = run(
            algorithm.update, _minibatches(data, batch_size, generator),
            steps=epochs * per_epoch, log_every=per_epoch, evaluate=measure, on_row=early_stop,
            progress=progress, desc="epochs", clock=clock, log_steps=log_steps,
        )  # fmt: skip
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    steps = history.attrs.get("steps")
    history = pd.concat([pd.DataFrame(start), history], ignore_index=True)
    history.insert(0, "epoch", (history.pop("step") // per_epoch).astype(int))
    if steps is not None:
        history.attrs["steps"] = steps
    return history
