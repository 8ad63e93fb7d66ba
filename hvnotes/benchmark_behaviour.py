"""What the benchmark's trained models do, measured by behaviour (notebook 05).

:func:`behaviour` scores every model of a run on its draw's three test sets and on two probes
of the frame: how often it follows the frame when frame and digit disagree, and what it
predicts from the frame alone (:func:`frame_only`). :func:`summary` and :func:`gains` turn the
per-model tables into the notebook's tables. :func:`frame_blind` is the control for these
measures (a draw whose frame says nothing in training), and :func:`gradient_mass` the
attribution measure they replace. Every measure reads a :class:`Runs` (the trainers of
:mod:`hvnotes.benchmark` return one): model ``k`` is ``runs.model.member(k)``, row ``k`` of
``runs.runs`` names its draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import pandas as pd
import torch
from torch import Tensor

from hvnotes import ensembles, seeding
from hvnotes.datasets import ShortcutDigits


class Runs(NamedTuple):
    """Models trained side by side: ``model`` (:class:`hvnotes.ensembles.MLPs`, member ``k``
    is run ``k``), ``runs`` (one row per member: its draw, settings and seeds) and the
    training ``history``."""

    model: ensembles.MLPs
    runs: pd.DataFrame
    history: pd.DataFrame


def frame_blind(data: ShortcutDigits, seed: int) -> ShortcutDigits:
    """The same draw, but every training digit wears its environment's code of a *random*
    class: the frame says nothing about the label in training (the test sets are unchanged).
    A model trained on it has no reason to use the frame: a control for measures of use."""
    generator = seeding.generator(seed)
    random_class = torch.randint(0, 10, data.y_train.shape, generator=generator)
    envs = torch.arange(data.codes.shape[0], device=data.codes.device)[:, None]
    codes = data.codes[envs, random_class.to(data.codes.device)]
    return data._replace(x_train=torch.where(data.shortcut, codes, data.x_train))


def frame_only(data: ShortcutDigits) -> Tensor:
    """The in-distribution test digits with the digit blanked: only the frame (its code of the
    digit's class) is left, ``(M, H, W)``."""
    return data.x_id * data.shortcut


@torch.no_grad()
def behaviour(runs: Runs, data: Sequence[ShortcutDigits]) -> pd.DataFrame:
    """What every trained model does, one row per model (its draw's test sets).

    Columns: ``id``, ``shift``, ``new`` (accuracies); ``follows_frame``: on shifted digits
    whose frame names another class, the share of predictions equal to the frame's class;
    ``frame_only``: the digit blanked (:func:`frame_only`), the share of predictions equal to
    the class the frame spells. An untrained network scores about 0.1 on both.
    """
    draw = runs.runs["draw"].tolist()

    def stacked(get):
        return torch.stack([get(data[d]) for d in draw])

    y = stacked(lambda d: d.y_test)
    pred = {name: ensembles.predict(runs.model, stacked(get)) for name, get in
            [("id", lambda d: d.x_id), ("shift", lambda d: d.x_shift),
             ("new", lambda d: d.x_new), ("frame", frame_only)]}  # fmt: skip
    frame_class = stacked(lambda d: d.shift_class)
    other = frame_class != y
    table = runs.runs.copy()
    for name in ("id", "shift", "new"):
        table[name] = (pred[name] == y).float().mean(dim=1).cpu().numpy()
    follows = ((pred["shift"] == frame_class) & other).sum(dim=1) / other.sum(dim=1)
    table["follows_frame"] = follows.cpu().numpy()
    table["frame_only"] = (pred["frame"] == y).float().mean(dim=1).cpu().numpy()
    return table


MEASURES = ("id", "shift", "new", "follows_frame", "frame_only")


def summary(tables: dict[str, pd.DataFrame], measures: Sequence[str] = MEASURES) -> pd.DataFrame:
    """Mean, min and max over runs of each measure, one row per method."""
    rows = {}
    for method, table in tables.items():
        stats = table[list(measures)].agg(["mean", "min", "max"])
        rows[method] = {(m, s): stats.loc[s, m] for m in measures for s in ("mean", "min", "max")}
    out = pd.DataFrame(rows).T
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    return out


def gains(tables: dict[str, pd.DataFrame], over: str = "ERM", measure: str = "shift"):
    """Each method's gain over ``over`` on ``measure``, run by run (same draw and seed)."""
    base = tables[over].set_index(["draw", "seed"])[measure]
    return pd.DataFrame(
        {m: t.set_index(["draw", "seed"])[measure] - base for m, t in tables.items() if m != over}
    )


def gradient_mass(runs: Runs, data: Sequence[ShortcutDigits]) -> list[float]:
    """Each model's mean share of ``|d/dx sum_c log p_c|`` on the frame, on its draw's ``x_id``
    digits (:func:`hvnotes.rrr.gradient_mass`): the attribution measure this lesson replaced."""
    from hvnotes import rrr

    out = []
    for k, d in enumerate(runs.runs["draw"].tolist()):
        grads = rrr.input_gradients(runs.model.member(k), data[d].x_id)
        out.append(rrr.gradient_mass(grads, data[d].shortcut).mean().item())
    return out
