"""One shortcut benchmark, every method (notebook 05), run by a protocol fixed in advance.

The protocol (:data:`hvnotes.benchmark_protocol.PROTOCOL`, registered in a commit of its own
before any test number was read) says which data, budget, grids, selection rule, seeds and
metrics the benchmark uses; the functions here only carry it out:

* :func:`draws` builds the benchmark's data draws (``datasets.shortcut_digits``, one per data
  seed);
* :func:`select` chooses each method's knob by leave-one-environment-out over several folds
  (never reading a test set) with the one-standard-error rule (:func:`one_standard_error`);
* :func:`train_runs` trains every method on every draw and initialisation
  (:mod:`hvnotes.ensembles` trains them side by side; :func:`train_stack` is one stack);
  :func:`untrained` is every method's null twin;
* :func:`env_sweep` (the deep dive) reruns ERM and the AND-mask, with the protocol's
  selection, on the benchmark rebuilt with each environment count.

The rest lives beside it, every name re-exported here (notebooks call ``benchmark.<name>``):

* :mod:`hvnotes.benchmark_annotation`: the shortcut found from environment labels alone
  (:func:`found_annotation`), the pixels whose first-layer gradients agree across environments
  no better than coin flips (:func:`pixel_agreement`, :func:`coin_agreement`, ...);
* :mod:`hvnotes.benchmark_behaviour`: what each model *does* (:func:`behaviour`: accuracy on
  the three test sets, how often it follows the frame when frame and digit disagree, what it
  predicts from the frame alone), its tables (:func:`summary`, :func:`gains`), the control
  :func:`frame_blind`, the attribution measure :func:`gradient_mass`, and the record
  :class:`Runs` that the trainers here return and every measure reads;
* :mod:`hvnotes.benchmark_colored_digits`: IRMv1's own kind of task (:func:`irm_setting`),
  where the shortcut's strength, not its code, differs between environments; IRMv1's penalty
  :func:`irm_penalty` is :func:`hvnotes.algorithms.irm_penalty`.

Every model is ``models.mlp(144, hidden, 10)``; model ``k`` of a run is
``run.model.member(k)``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from hvnotes import datasets, ensembles, seeding
from hvnotes.algorithms import irm_penalty
from hvnotes.benchmark_annotation import (
    coin_agreement,
    coin_spread,
    disagreement_mask,
    first_layer_agreement,
    found_annotation,
    pixel_agreement,
    shuffle_environments,
)
from hvnotes.benchmark_behaviour import (
    MEASURES,
    Runs,
    behaviour,
    frame_blind,
    frame_only,
    gains,
    gradient_mass,
    summary,
)
from hvnotes.benchmark_colored_digits import irm_setting
from hvnotes.benchmark_protocol import PROTOCOL
from hvnotes.datasets import ShortcutDigits
from hvnotes.train import check_positive_int

__all__ = [
    "MEASURES",
    "METHODS",
    "PROTOCOL",
    "Runs",
    "behaviour",
    "coin_agreement",
    "coin_spread",
    "disagreement_mask",
    "draws",
    "env_sweep",
    "first_layer_agreement",
    "found_annotation",
    "frame_blind",
    "frame_only",
    "gains",
    "gradient_mass",
    "irm_penalty",
    "irm_setting",
    "one_standard_error",
    "pixel_agreement",
    "protocol_digest",
    "select",
    "shuffle_environments",
    "summary",
    "train_runs",
    "train_stack",
    "untrained",
]

#: the methods of the benchmark, in the order of the tables (the protocol's)
METHODS: tuple[str, ...] = tuple(PROTOCOL["methods"])


def protocol_digest() -> str:
    """SHA-256 of the protocol file as committed (the notebook prints it)."""
    source = Path(__file__).with_name("benchmark_protocol.py").read_bytes()
    return hashlib.sha256(source).hexdigest()


# ----------------------------------------------------------------------------- the data


def draws(n_draws: int | None = None, n_envs: int | None = None, device=None) -> list:
    """The benchmark's data draws: ``datasets.shortcut_digits`` with data seed
    ``derive_seed(d)`` for ``d < n_draws`` (default: the protocol's)."""
    spec = PROTOCOL["benchmark"]
    n_draws = PROTOCOL["seeds"]["data_draws"] if n_draws is None else n_draws
    return [
        datasets.shortcut_digits(
            n_envs=spec["n_envs"] if n_envs is None else n_envs,
            width=spec["frame_width"],
            density=spec["code_density"],
            seed=seeding.derive_seed(d),
        ).to(device or "cpu")
        for d in range(check_positive_int("n_draws", n_draws))
    ]


# ----------------------------------------------------------------------------- training


def _method_spec(method: str) -> tuple[str, str, dict]:
    """The ensembles method behind a protocol method or twin, its knob, and fixed values."""
    twin = PROTOCOL["twins"].get(method)
    base = twin["of"] if twin else method
    if base not in PROTOCOL["methods"]:
        raise ValueError(f"method must be one of {METHODS} or a twin of one, got {method!r}")
    spec, steps = PROTOCOL["methods"][base], PROTOCOL["budget"]["steps"]
    fixed = {}
    if base == "SAND-mask":
        fixed = {"k": spec["k"]}
    elif base == "IRMv1":
        fixed = {"irm_anneal": round(steps * spec["anneal_fraction"])}
    name = "RRR" if base.startswith("RRR") else base
    if method == "AND-mask, random":
        name, fixed = method, {"mask_seed": seeding.derive_seed(905)}
    return name, spec["knob"], fixed


def train_stack(
    method: str,
    x: Tensor,
    y: Tensor,
    settings: pd.DataFrame,
    annotations: Tensor | None = None,
    *,
    steps: int | None = None,
    log_every: int | None = None,
    batch_seed: int | None = None,
    **fixed,
) -> Runs:
    """Train one model per row of ``settings`` with a protocol method, all side by side.

    Args:
        method: a protocol method (:data:`METHODS`).
        x, y: training data ``(K, E, N, H, W)``, ``(K, E, N)``: row ``k``'s own environments.
        settings: ``K`` rows; column ``init`` (the member's seed), the method's knob
            (``PROTOCOL["methods"][method]["knob"]``) and optionally ``weight_decay``.
        annotations: RRR's "must not matter" masks ``(K, H, W)``.
        steps: default the protocol's budget; ``fixed``: more keyword arguments for
            :func:`hvnotes.ensembles.fit` (``decay``, another method's fixed values...).
    """
    budget = PROTOCOL["budget"]
    name, knob, hp = _method_spec(method)
    hp = hp | {c: torch.tensor(settings[c].tolist(), dtype=torch.float32, device=x.device)
               for c in settings.columns if c not in ("init", "draw", "fold")}  # fmt: skip
    if knob not in hp:
        raise ValueError(f"settings must give {method}'s knob {knob!r}")
    hp.setdefault("weight_decay", budget["weight_decay"])
    if name == "RRR":
        hp["annotations"] = annotations
    model = ensembles.MLPs(
        math.prod(x.shape[3:]), PROTOCOL["model"]["hidden"], 10, settings["init"].tolist()
    ).to(x.device)
    batch_seed = int(settings["init"].iloc[0]) if batch_seed is None else batch_seed
    history = ensembles.fit(
        name, model, ensembles.stacked_batches(x, y, budget["batch_per_env"], batch_seed),
        steps=steps or budget["steps"], lr=budget["lr"], log_every=log_every, **(hp | fixed),
    )  # fmt: skip
    return Runs(model, settings.reset_index(drop=True), history)


def _annotations(method: str, data: Sequence[ShortcutDigits], found: Sequence[Tensor] | None):
    """RRR's annotation on every draw: the frame, the found mask, or (the twin) the digit."""
    if method == "RRR":
        return [d.shortcut for d in data]
    if method == "RRR, digit annotated":
        return [~d.shortcut for d in data]
    if method == "RRR, found":
        if found is None:
            raise ValueError("'RRR, found' needs the found annotation of every draw")
        return list(found)
    return None


def select(
    method: str,
    data: Sequence[ShortcutDigits],
    found: Sequence[Tensor] | None = None,
    **fixed,
) -> pd.DataFrame:
    """Leave-one-environment-out validation of every value of ``method``'s knob on every draw.

    For each draw ``d``, each fold (the protocol's held-out environments) and each grid value, a
    model trains on the other environments and is scored on the held-out environment's
    training digits. No test set is read. Returns one row per (draw, fold, value): ``draw``,
    ``fold``, ``value``, ``correct`` and ``n`` (validation digits).
    """
    spec, sel = PROTOCOL["methods"][method], PROTOCOL["selection"]
    notes = _annotations(method, data, found)
    xs, ys, xv, yv, ann, rows = [], [], [], [], [], []
    for d, draw in enumerate(data):
        n_envs = draw.x_train.shape[0]
        for fold in sel["folds"]:
            keep = [e for e in range(n_envs) if e != fold]
            for value in spec["grid"]:
                xs.append(draw.x_train[keep])
                ys.append(draw.y_train[keep])
                xv.append(draw.x_train[fold])
                yv.append(draw.y_train[fold])
                if notes is not None:
                    ann.append(notes[d])
                rows.append({"draw": d, "fold": fold, "value": value,
                             "init": seeding.derive_seed(100 + d)})  # fmt: skip
    settings = pd.DataFrame(rows).rename(columns={"value": spec["knob"]})
    runs = train_stack(
        method, torch.stack(xs), torch.stack(ys), settings,
        torch.stack(ann) if ann else None, batch_seed=seeding.derive_seed(150), **fixed,
    )  # fmt: skip
    correct = ensembles.predict(runs.model, torch.stack(xv)) == torch.stack(yv)
    table = runs.runs.rename(columns={spec["knob"]: "value"}).drop(columns="init")
    table["correct"] = correct.sum(dim=1).cpu().numpy()
    table["n"] = correct.shape[1]
    return table


def one_standard_error(table: pd.DataFrame, grid: Sequence[float]) -> pd.DataFrame:
    """The protocol's selection rule, per draw: the validation accuracy of every value (pooled
    over folds), its binomial standard error, and the chosen value — the most constrained
    (latest in ``grid``) among those within one standard error of the best.

    Returns one row per (draw, value): ``validation``, ``se``, ``chosen``.
    """
    pooled = table.groupby(["draw", "value"])[["correct", "n"]].sum()
    pooled["validation"] = pooled["correct"] / pooled["n"]
    p = pooled["validation"]
    pooled["se"] = (p * (1 - p) / pooled["n"]).pow(0.5)
    order = {v: i for i, v in enumerate(grid)}
    pooled["chosen"] = False
    for draw, part in pooled.groupby(level="draw"):
        best = part["validation"].idxmax()
        within = part[part["validation"] >= part.loc[best, "validation"] - part.loc[best, "se"]]
        strongest = max(within.index, key=lambda key: order[key[1]])
        pooled.loc[strongest, "chosen"] = True
        del draw
    return pooled[["validation", "se", "chosen"]]


def train_runs(
    method: str,
    data: Sequence[ShortcutDigits],
    chosen: dict[int, float],
    found: Sequence[Tensor] | None = None,
    inits: int | None = None,
    **fixed,
) -> Runs:
    """Train ``method`` on every draw (all environments) with its chosen value ``chosen[d]``,
    once per initialisation (default: the protocol's ``inits_per_draw``; init seed
    ``derive_seed(200 + 10 d + i)``). ``method`` may also be a twin of the protocol
    (``PROTOCOL["twins"]``), given the chosen values of the method it shadows."""
    inits = PROTOCOL["seeds"]["inits_per_draw"] if inits is None else inits
    knob = _method_spec(method)[1]
    notes = _annotations(method, data, found)
    rows = [{"draw": d, "seed": i, knob: chosen[d], "init": seeding.derive_seed(200 + 10 * d + i)}
            for d in range(len(data)) for i in range(inits)]  # fmt: skip
    settings = pd.DataFrame(rows)
    x = torch.stack([data[r["draw"]].x_train for r in rows])
    y = torch.stack([data[r["draw"]].y_train for r in rows])
    ann = torch.stack([notes[r["draw"]] for r in rows]) if notes is not None else None
    return train_stack(method, x, y, settings.drop(columns="seed"), ann, **fixed)._replace(
        runs=settings
    )


def untrained(data: Sequence[ShortcutDigits], inits: int | None = None) -> Runs:
    """Untrained networks, one per draw and initialisation (the null twin of every method)."""
    inits = PROTOCOL["seeds"]["inits_per_draw"] if inits is None else inits
    rows = [{"draw": d, "seed": i, "init": seeding.derive_seed(200 + 10 * d + i)}
            for d in range(len(data)) for i in range(inits)]  # fmt: skip
    model = ensembles.MLPs(
        math.prod(data[0].x_train.shape[2:]), PROTOCOL["model"]["hidden"], 10,
        [r["init"] for r in rows],
    ).to(data[0].x_train.device)  # fmt: skip
    return Runs(model.eval(), pd.DataFrame(rows), pd.DataFrame())


# ----------------------------------------------------------------------------- the deep dive


def env_sweep(
    env_counts: Sequence[int], n_draws: int = 2, device=None, **fixed
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ERM and the AND-mask on the benchmark rebuilt with each environment count.

    For every count ``E`` and draw (data seed ``derive_seed(d)``, so every count deals the same
    digits): ERM (the protocol's budget, no decay), the AND-mask at the paper's ``tau = 1``, and
    the AND-mask with ``tau`` chosen by the protocol's selection (:func:`select`,
    :func:`one_standard_error`; with ``E = 2`` every ``tau > 0`` is unanimity, so ``tau = 1``).
    One initialisation per draw.

    Returns ``(behaviour, selection)``: one :func:`behaviour` row per (E, method, draw) with
    columns ``envs``, ``method``, ``tau``; and the selection rows (``envs``, ``draw``,
    ``value``, ``validation``, ``se``, ``chosen``).
    """
    rows, picks = [], []
    grid = PROTOCOL["methods"]["AND-mask"]["grid"]
    for n_envs in env_counts:
        data = draws(n_draws, n_envs=n_envs, device=device)
        if n_envs > 2:
            rule = one_standard_error(select("AND-mask", data, **fixed), grid)
            picks.append(rule.reset_index().assign(envs=n_envs))
            tau = {d: v for d, v in rule[rule["chosen"]].index}
        else:
            tau = dict.fromkeys(range(n_draws), 1.0)
        for label, method, chosen in [
            ("ERM", "ERM", dict.fromkeys(range(n_draws), 0.0)),
            ("AND-mask, tau = 1", "AND-mask", dict.fromkeys(range(n_draws), 1.0)),
            ("AND-mask, tau selected", "AND-mask", tau),
        ]:
            table = behaviour(train_runs(method, data, chosen, inits=1, **fixed), data)
            knob = "weight_decay" if method == "ERM" else "tau"
            rows.append(table.rename(columns={knob: "tau"}).assign(envs=n_envs, method=label))
    return pd.concat(rows, ignore_index=True), pd.concat(picks, ignore_index=True)
