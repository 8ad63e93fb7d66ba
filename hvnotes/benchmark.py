"""One shortcut benchmark, every method (notebook 05), run by a protocol fixed in advance.

The protocol (:data:`hvnotes.benchmark_protocol.PROTOCOL`, registered in a commit of its own
before any test number was read) says which data, budget, grids, selection rule, seeds and
metrics the benchmark uses; the functions here only carry it out:

* :func:`draws` builds the benchmark's data draws (``datasets.shortcut_digits``, one per data
  seed);
* :func:`found_annotation` finds the shortcut from environment labels alone: the pixels whose
  first-layer gradients agree across environments no better than coin flips
  (:func:`pixel_agreement`, :func:`coin_agreement`);
* :func:`select` chooses each method's knob by leave-one-environment-out over several folds
  (never reading a test set) with the one-standard-error rule (:func:`one_standard_error`);
* :func:`train_runs` trains every method on every draw and initialisation
  (:mod:`hvnotes.ensembles` trains them side by side), and :func:`behaviour` measures what each
  model *does*: accuracy on the three test sets, how often it follows the frame when the frame
  and the digit disagree, and what it predicts from the frame alone;
* :func:`irm_setting` runs IRMv1's own kind of task (colored digits), where the shortcut's
  strength, not its code, differs between environments.

Every model is ``models.mlp(144, hidden, 10)``; model ``k`` of a run is
``run.model.member(k)``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hvnotes import andmask, datasets, ensembles, models, seeding
from hvnotes.algorithms import irm_penalty  # noqa: F401  (notebook 05 calls benchmark.irm_penalty)
from hvnotes.benchmark_protocol import PROTOCOL
from hvnotes.datasets import ShortcutDigits
from hvnotes.train import check_positive_int

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


# ----------------------------------------------------------------------------- coins


def coin_agreement(n_envs: int) -> float:
    """``E |mean_e s_e|`` for ``n_envs`` fair ±1 signs: the agreement of pure noise."""
    n = check_positive_int("n_envs", n_envs)
    return sum(math.comb(n, j) * abs(2 * j - n) for j in range(n + 1)) / n / 2**n


def coin_spread(n_envs: int, n_units: int) -> float:
    """Standard deviation of the mean of ``n_units`` independent :func:`coin_agreement` draws:
    how far pure noise strays from the coin level when averaged over ``n_units`` hidden units."""
    n, units = check_positive_int("n_envs", n_envs), check_positive_int("n_units", n_units)
    second = sum(math.comb(n, j) * (2 * j - n) ** 2 for j in range(n + 1)) / n**2 / 2**n
    return math.sqrt((second - coin_agreement(n) ** 2) / units)


def pixel_agreement(model: nn.Module, data: ShortcutDigits) -> Tensor:
    """How much the environments agree on each input pixel's first-layer weights: ``(H, W)``.

    The mean over hidden units of ``|mean_e sign(g_e)|`` for the first ``nn.Linear``'s weights
    from that pixel (per-environment gradients by :func:`hvnotes.andmask.env_gradients` on the
    full training set). It needs environment labels, not an annotation of the shortcut.
    """
    grads = andmask.env_gradients(model, F.cross_entropy, data.x_train, data.y_train)
    name = next(n for n, p in model.named_parameters() if p.ndim == 2)
    agreement = grads[name].sign().mean(dim=0).abs().mean(dim=0)  # (H * W,)
    return agreement.view(data.x_train.shape[2:])


def _used_pixels(data: ShortcutDigits) -> Tensor:
    """Pixels that are non-zero in some training image: bool ``(H, W)``."""
    return (data.x_train != 0).flatten(0, 1).any(0)


def first_layer_agreement(model: nn.Module, data: ShortcutDigits) -> dict[str, float]:
    """:func:`pixel_agreement` averaged over the frame's pixels and over the digit's (only
    pixels that are ever non-zero count): do the environments agree on the frame?"""
    agreement, used = pixel_agreement(model, data), _used_pixels(data)
    return {
        "frame": agreement[data.shortcut & used].mean().item(),
        "digit": agreement[~data.shortcut & used].mean().item(),
    }


def disagreement_mask(agreement: Tensor, data: ShortcutDigits, delta: float = 0.05) -> Tensor:
    """An annotation found from the environments alone: the pixels (ever non-zero in training)
    whose :func:`pixel_agreement` is below the coin level :func:`coin_agreement` plus
    ``delta`` — where the environments' gradients agree no better than chance."""
    return (agreement < coin_agreement(data.x_train.shape[0]) + delta) & _used_pixels(data)


def shuffle_environments(data: ShortcutDigits, seed: int) -> ShortcutDigits:
    """The same training digits dealt into the same number of environments at random: an
    environment then mixes every code book (the found annotation's null twin)."""
    generator = seeding.generator(seed)
    n_envs, n = data.y_train.shape
    order = torch.randperm(n_envs * n, generator=generator).to(data.y_train.device)
    return data._replace(
        x_train=data.x_train.flatten(0, 1)[order].view_as(data.x_train),
        y_train=data.y_train.flatten()[order].view_as(data.y_train),
    )


def found_annotation(
    data: ShortcutDigits, seed: int, shuffled: bool = False
) -> tuple[Tensor, Tensor]:
    """The protocol's found annotation of one draw: ``(mask (H, W) bool, agreement (H, W))``.

    An untrained ``models.mlp(H * W, (256,), 10)`` initialised with ``seed``; the mask is
    :func:`disagreement_mask` with ``delta`` two standard deviations of a mean of 256 coin
    agreements (:func:`coin_spread`). ``shuffled``: measure agreement on environments dealt at
    random (:func:`shuffle_environments`), the twin that removes the environment labels.
    """
    width = 256
    with seeding.torch_seed(seed):
        net = models.mlp(math.prod(data.x_train.shape[2:]), (width,), 10)
    measured = shuffle_environments(data, seeding.derive_seed(906)) if shuffled else data
    agreement = pixel_agreement(net.to(data.x_train.device), measured)
    delta = 2 * coin_spread(data.x_train.shape[0], width)
    return disagreement_mask(agreement, data, delta), agreement


# ----------------------------------------------------------------------------- training


class Runs(NamedTuple):
    """Models trained side by side: ``model`` (:class:`hvnotes.ensembles.MLPs`, member ``k``
    is run ``k``), ``runs`` (one row per member: its draw, settings and seeds) and the
    training ``history``."""

    model: ensembles.MLPs
    runs: pd.DataFrame
    history: pd.DataFrame


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


# ----------------------------------------------------------------------------- behaviour


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


# ----------------------------------------------------------------------------- IRM's setting


def _colourings(x: Tensor, digits: Tensor, flips: Tensor, spec: dict, seed: int):
    """Endless minibatches of freshly coloured digits: ``spec["batch_per_env"]`` digits of every
    environment per model, their labels and colours redrawn at every step."""
    generator = seeding.generator(seed)
    for xs, ds in ensembles.stacked_batches(x, digits, spec["batch_per_env"], seed):
        yield datasets.color_digits(xs, ds, flips, spec["label_noise"], generator)


def irm_setting(
    methods: Sequence[str] = ("IRMv1", "IRMv1, no penalty", "AND-mask"),
    device=None,
    seeds: Sequence[int] | None = None,
    **over,
) -> pd.DataFrame:
    """IRMv1's own kind of task: colored digits (the protocol's ``irm_setting``).

    Each method trains one model per seed (data and init seed ``derive_seed(400 + s)``, or
    ``seeds``) on two environments whose colour agrees with the noisy label 90 % and 80 % of the
    time, on minibatches whose labels and colours are drawn afresh at every step; the test
    environment's colour agrees 10 % of the time. ``"IRMv1, no penalty"`` is IRMv1 with its
    penalty weight 0 throughout: ERM, with the same initialisation, batches and Adam reset (the
    IRMv1 models are trained side by side). ``"AND-mask"`` uses the protocol's ``tau``. ``over``
    overrides protocol values (for tests).

    Returns one row per (method, seed): ``train`` (accuracy on a fresh colouring of the training
    digits) and ``test`` (on the test environment), both against the noisy labels.
    """
    spec = PROTOCOL["irm_setting"] | over
    if seeds is None:
        seeds = [seeding.derive_seed(400 + s) for s in range(spec["seeds"])]
    data = [datasets.colored_digits(2, spec["colour_flips"], spec["test_flip"],
                                    spec["label_noise"], seed=s).to(device or "cpu")
            for s in seeds]  # fmt: skip
    x = torch.stack([d.x_train for d in data])  # (K, E, N, H, W)
    digits = torch.stack([d.digit_train for d in data])
    flips = torch.stack([d.colour_flip for d in data])[..., None]  # (K, E, 1)
    g_test = seeding.generator(seeding.derive_seed(450))
    tests = [datasets.color_digits(d.x_test, d.digit_test, d.test_flip, d.label_noise, g_test)
             for d in data]  # fmt: skip
    x_test, y_test = torch.stack([t[0] for t in tests]), torch.stack([t[1] for t in tests])
    x_check, y_check = datasets.color_digits(x, digits, flips, spec["label_noise"], g_test)
    irm = [m for m in methods if m.startswith("IRMv1")]
    stacks = ([(irm, "IRMv1")] if irm else []) + [([m], m) for m in methods if m not in irm]
    rows = []
    for names, update in stacks:
        hp = {}
        if update == "IRMv1":
            on = torch.tensor([float(m == "IRMv1") for m in names for _ in seeds])
            unknown = [m for m in names if m not in ("IRMv1", "IRMv1, no penalty")]
            if unknown:
                raise ValueError(f"unknown IRMv1 variants {unknown}")
            hp = {"irm_weight": on * spec["irm_weight"], "irm_start_weight": on,
                  "irm_anneal": spec["irm_anneal"]}  # fmt: skip
        elif update == "AND-mask":
            hp = {"tau": spec["and_mask_tau"]}
        elif update != "ERM":
            raise ValueError(f"methods must be IRMv1 variants, 'AND-mask' or 'ERM', got {update!r}")
        reps = len(names)
        model = ensembles.MLPs(2 * 8 * 8, spec["hidden"], 2, list(seeds) * reps).to(x.device)
        batches = _colourings(*(t.repeat(reps, *[1] * (t.ndim - 1)) for t in (x, digits, flips)),
                              spec, seeding.derive_seed(460))  # fmt: skip
        ensembles.fit(update, model, batches, steps=spec["steps"], lr=spec["lr"],
                      weight_decay=spec["coupled_l2"], decay="coupled", **hp)  # fmt: skip
        train_acc = ensembles.accuracy(model, x_check.flatten(1, 2).repeat(reps, 1, 1, 1, 1),
                                       y_check.flatten(1, 2).repeat(reps, 1))  # fmt: skip
        test_acc = ensembles.accuracy(
            model, x_test.repeat(reps, 1, 1, 1, 1), y_test.repeat(reps, 1)
        )
        for j, method in enumerate(names):
            for s in range(len(seeds)):
                k = j * len(seeds) + s
                rows.append({"method": method, "seed": s, "train": train_acc[k].item(),
                             "test": test_acc[k].item()})  # fmt: skip
    return pd.DataFrame(rows)


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


def gradient_mass(runs: Runs, data: Sequence[ShortcutDigits]) -> list[float]:
    """Each model's mean share of ``|d/dx sum_c log p_c|`` on the frame, on its draw's ``x_id``
    digits (:func:`hvnotes.rrr.gradient_mass`): the attribution measure this lesson replaced."""
    from hvnotes import rrr

    out = []
    for k, d in enumerate(runs.runs["draw"].tolist()):
        grads = rrr.input_gradients(runs.model.member(k), data[d].x_id)
        out.append(rrr.gradient_mass(grads, data[d].shortcut).mean().item())
    return out
