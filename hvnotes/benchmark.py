"""One shortcut benchmark, every method (notebook 05): train ERM, AND-mask, RRR and IRMv1 on the
same data with the same model and budget, then ask each model *which reasons* it learned.

Methods are small comparable units, as in DomainBed's ``algorithms.py``: each is a
:class:`Method` with one ``update`` per env-stacked batch ``xs`` ``(E, B, H, W)``, ``ys``
``(E, B)``, and its hyper-parameters in one registry (:data:`HPARAMS`); :func:`train` runs any of
them through the package's one loop (:func:`hvnotes.train.run`).

* ``"ERM"``: cross-entropy on the pooled batch; needs nothing from the user.
* ``"AND-mask"``: :func:`hvnotes.andmask.and_mask_step`; needs environments.
* ``"RRR"``: :func:`hvnotes.rrr.rrr_loss` with the shortcut annotated; needs annotations.
* ``"IRMv1"``: pooled cross-entropy plus each environment's squared gradient with respect to a
  dummy scale on the logits (Arjovsky et al. 2019), Adam reset at the penalty's switch as in
  DomainBed; needs environments.

The reasons of a trained model are read three ways: input gradients (how much of their mass is on
the shortcut), the :mod:`hvnotes.sst` checker (is the digit alone, or the frame alone, a
sufficient reason?) and a post-hoc sufficient subset (top-k saliency search) per image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hvnotes import andmask, datasets, models, rrr, seeding, sst
from hvnotes.datasets import ShortcutDigits
from hvnotes.train import accuracy, check_positive_int, env_batches, predict, run


def irm_penalty(logits: Tensor, y: Tensor) -> Tensor:
    """IRMv1's penalty for one environment: ``(d/ds CE(s * logits, y) at s = 1)^2``.

    Args:
        logits: ``(B, C)``; y: ``(B,)``. Returns a scalar with a graph (it is trained through).
    """
    scale = torch.ones((), dtype=logits.dtype, device=logits.device, requires_grad=True)
    (g,) = torch.autograd.grad(F.cross_entropy(logits * scale, y), scale, create_graph=True)
    return g.square()


class Method:
    """One algorithm, DomainBed style: a network, its optimizer, and one ``update`` per batch.

    Subclasses set ``defaults`` (their hyper-parameters; the registry :data:`HPARAMS` collects
    them) and implement ``update(xs, ys, step) -> {term: float}`` on an env-stacked batch
    ``xs`` ``(E, B, H, W)``, ``ys`` ``(E, B)``; the returned terms are logged in the history.
    Every method gets the same optimizer: AdamW, whose *decoupled* weight decay shrinks every
    weight by ``lr * weight_decay`` per step whatever its gradient (``decoupled=False``: Adam with
    the decay added to the gradient, which Adam then normalises — on a coordinate the AND-mask
    zeroes that becomes a step of about ``lr`` towards 0, a strong pruning of its own).
    """

    defaults: dict = {}

    def __init__(
        self,
        model: nn.Module,
        data: ShortcutDigits,
        *,
        lr: float,
        weight_decay: float,
        decoupled: bool = True,
        **hparams,
    ) -> None:
        unknown = sorted(set(hparams) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"{type(self).__name__} takes the hyper-parameters {sorted(self.defaults)}, "
                f"got {unknown}"
            )
        self.model, self.data, self.hp = model, data, self.defaults | hparams
        self.lr, self.weight_decay, self.decoupled = lr, weight_decay, decoupled
        self.optimizer = self.new_optimizer()

    def new_optimizer(self) -> torch.optim.Optimizer:
        kind = torch.optim.AdamW if self.decoupled else torch.optim.Adam
        return kind(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def descend(self, loss: Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def update(self, xs: Tensor, ys: Tensor, step: int) -> dict[str, float]:
        raise NotImplementedError


class ERM(Method):
    """Cross-entropy on the pooled batch; needs nothing from the user."""

    def update(self, xs, ys, step):
        loss = F.cross_entropy(self.model(xs.flatten(0, 1)), ys.flatten())
        self.descend(loss)
        return {"loss": loss.item()}


class ANDMask(Method):
    """:func:`hvnotes.andmask.and_mask_step` with threshold ``tau``; needs environments."""

    defaults = {"tau": 1.0}

    def update(self, xs, ys, step):
        loss, kept = andmask.and_mask_step(
            self.model, F.cross_entropy, xs, ys, self.optimizer, tau=self.hp["tau"]
        )
        return {"loss": loss, "kept": sum(kept.values()) / len(kept)}


class RRR(Method):
    """:func:`hvnotes.rrr.rrr_loss` with the shortcut annotated, weight ``l2_grads`` (λ1)."""

    defaults = {"l2_grads": 10.0}

    def update(self, xs, ys, step):
        total, ce, rr = rrr.rrr_loss(
            self.model, xs.flatten(0, 1), ys.flatten(), self.data.shortcut, self.hp["l2_grads"]
        )
        self.descend(total)
        return {"loss": total.item(), "ce": ce.item(), "rr": rr.item()}


class IRMv1(Method):
    """IRMv1 (Arjovsky et al. 2019), as DomainBed runs it; needs environments.

    Pooled cross-entropy plus ``w`` times the mean of each environment's :func:`irm_penalty`,
    with ``w = 1`` for the first ``irm_anneal`` steps and ``irm_weight`` after. At the switch
    Adam is reset, because its moment estimates would otherwise meet gradients a hundred times
    larger than the ones they were built on (DomainBed's fix).
    """

    defaults = {"irm_weight": 100.0, "irm_anneal": 100}

    def update(self, xs, ys, step):
        if step == self.hp["irm_anneal"]:
            self.optimizer = self.new_optimizer()
        logits = self.model(xs.flatten(0, 1)).view(*ys.shape, -1)
        ce = F.cross_entropy(logits.flatten(0, 1), ys.flatten())
        penalty = torch.stack([irm_penalty(le, ye) for le, ye in zip(logits, ys, strict=True)])
        weight = 1.0 if step < self.hp["irm_anneal"] else self.hp["irm_weight"]
        loss = ce + weight * penalty.mean()
        self.descend(loss)
        return {"loss": loss.item(), "ce": ce.item(), "penalty": penalty.mean().item()}


#: the methods by name, and their hyper-parameters (DomainBed's registry)
METHODS: dict[str, type[Method]] = {"ERM": ERM, "AND-mask": ANDMask, "RRR": RRR, "IRMv1": IRMv1}
HPARAMS: dict[str, dict] = {name: dict(cls.defaults) for name, cls in METHODS.items()}
#: the tuning budget: three values of each method's main knob. ERM has no knob of its own, so it
#: gets the weight decay, over a range where AdamW's shrinkage (``lr * weight_decay`` per step,
#: up to 0.3 %) changes the model within the 300 steps.
SEARCH: dict[str, dict[str, tuple]] = {
    "ERM": {"weight_decay": (1e-2, 1e-1, 1.0)},
    "AND-mask": {"tau": (0.5, 0.75, 1.0)},
    "RRR": {"l2_grads": (1.0, 10.0, 100.0)},
    "IRMv1": {"irm_weight": (10.0, 100.0, 1000.0)},
}


class Trained(NamedTuple):
    """A trained model (in eval mode) and its training history."""

    model: nn.Module
    history: pd.DataFrame


def train(
    method: str,
    data: ShortcutDigits,
    *,
    steps: int = 300,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    hidden: tuple[int, ...] = (64,),
    batch_per_env: int | None = None,
    decoupled: bool = True,
    log_every: int | None = None,
    seed: int | None = None,
    **hparams,
) -> Trained:
    """Train a fresh ``models.mlp(H * W, hidden, 10)`` with ``method``; return it and its history.

    Every method gets the same model, initialisation (``seed``; None: the run's
    ``hvnotes.derive_seed(0)``), optimizer and batches: ``steps`` steps on ``batch_per_env``
    examples of every environment (None: all of them, full batch), drawn by
    :func:`hvnotes.train.env_batches`.

    Args:
        method: one of :data:`METHODS`.
        data: the benchmark (``x_train`` ``(E, N, H, W)``), on the device to train on.
        decoupled: AdamW's decoupled weight decay (the default) or Adam's coupled L2.
        log_every: one history row every ``log_every`` steps (None: one row, at the end).
        hparams: the method's own hyper-parameters (:data:`HPARAMS` has the defaults).

    Returns:
        :class:`Trained`: the model in eval mode, and the history of :func:`hvnotes.train.run`
        (``step``, the method's logged terms, ``seconds``).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {tuple(METHODS)}, got {method!r}")
    steps = check_positive_int("steps", steps)
    seed = seeding.resolve_seed(seed)
    with seeding.torch_seed(seed):
        model = models.mlp(math.prod(data.x_train.shape[2:]), hidden, 10).to(data.x_train.device)
    algorithm = METHODS[method](
        model, data, lr=lr, weight_decay=weight_decay, decoupled=decoupled, **hparams
    )
    counter = iter(range(steps))

    def step(xs, ys):
        model.train()
        return algorithm.update(xs, ys, next(counter))

    batches = env_batches(data.x_train, data.y_train, batch_per_env=batch_per_env, seed=seed)
    history = run(step, batches, steps=steps, log_every=log_every or steps, progress=False)
    return Trained(model.eval(), history)


def sufficient_subsets(
    model: nn.Module,
    x: Tensor,
    pool: Tensor,
    min_rate: float = 0.9,
    n_draws: int = 10,
    seed: int | None = None,
) -> Tensor:
    """A post-hoc sufficient subset per row: bool ``(N, H, W)``.

    Pixels are ranked by the model's own saliency ``|d logit_c / dx|``; the subset is the
    smallest top-k set that :func:`hvnotes.sst.topk_search` accepts under the *probabilistic*
    notion: with the complement filled by the pixels of a random image from ``pool`` (other
    training digits with their own frames), the prediction must survive in ``min_rate`` of
    ``n_draws`` fills. (Under the zero baseline a handful of pixels "suffice" for these models,
    as notebook 05 measures: a weak notion, as notebook 04 showed.)
    """
    generator = seeding.generator(seed)
    saliency = sst.attribution(model, x, "saliency")
    return sst.topk_search(
        model, x, saliency, "probabilistic", pool=pool, n_draws=n_draws, generator=generator,
        min_rate=min_rate,
    )  # fmt: skip


def reasons(model: nn.Module, data: ShortcutDigits, n_explain: int = 16) -> dict[str, float]:
    """One row of the results table: what ``model`` gets right and which reasons it uses.

    Returns:
        ``train``, ``id``, ``shift``: accuracies (training set, held-out digits with a working
        shortcut, and with a broken one);
        ``grad_on_frame``: mean fraction of the input gradient's mass
        (:func:`hvnotes.rrr.gradient_mass`) on the frame, on the ``id`` digits;
        ``digit_suff`` / ``frame_suff``: sufficiency rate (:func:`hvnotes.sst.sufficiency_rate`,
        probabilistic, the rest taken from random training images) of the digit alone and of
        the frame alone on the ``id`` digits;
        for the :func:`sufficient_subsets` of the first ``n_explain`` ``id`` digits:
        ``subset_size`` (fraction of pixels), ``subset_base`` (baseline-0 sufficiency rate),
        ``subset_prob`` (probabilistic rate, re-checked with fresh draws), ``subset_on_frame``
        (fraction of its pixels on the frame) and ``subset_has_frame`` (fraction of subsets
        holding at least one frame pixel).
    """
    x_train, y_train = data.x_train.flatten(0, 1), data.y_train.flatten()
    frame = data.shortcut
    x = data.x_id[:n_explain]
    keep = sufficient_subsets(model, x, x_train)
    g = seeding.generator(seeding.derive_seed(1))
    check = {"pool": x_train, "n_draws": 10, "generator": g}
    kept = keep.flatten(1).sum(1).clamp_min(1)
    return {
        "train": accuracy(model, x_train, y_train),
        "id": accuracy(model, data.x_id, data.y_test),
        "shift": accuracy(model, data.x_shift, data.y_test),
        "new": accuracy(model, data.x_new, data.y_test),
        "grad_on_frame": rrr.gradient_mass(rrr.input_gradients(model, data.x_id), frame)
        .mean()
        .item(),
        "digit_suff": sst.sufficiency_rate(model, data.x_id, ~frame, "probabilistic", **check),
        "frame_suff": sst.sufficiency_rate(model, data.x_id, frame, "probabilistic", **check),
        "subset_size": sst.explanation_size(keep).mean().item(),
        "subset_base": sst.sufficiency_rate(model, x, keep, "baseline"),
        "subset_prob": sst.sufficiency_rate(model, x, keep, "probabilistic", **check),
        "subset_on_frame": ((keep & frame).flatten(1).sum(1) / kept).mean().item(),
        "subset_has_frame": (keep & frame).flatten(1).any(1).float().mean().item(),
    }


def results_table(trained: dict[str, nn.Module], data: ShortcutDigits, **kw) -> pd.DataFrame:
    """:func:`reasons` of every trained model, one row per method (index ``method``)."""
    rows = [{"method": name} | reasons(model, data, **kw) for name, model in trained.items()]
    return pd.DataFrame(rows).set_index("method")


def first_layer_agreement(model: nn.Module, data: ShortcutDigits) -> dict[str, float]:
    """Do the environments agree on the first layer's gradient? Frame pixels vs digit pixels.

    Per-environment gradients (:func:`hvnotes.andmask.env_gradients`, full training set) of the
    first ``nn.Linear``'s weight ``(hidden, H * W)``; for each component the agreement
    ``|mean_e sign(g_e)|``; returned as its mean over the columns of frame pixels and of digit
    pixels (only pixels that are ever non-zero count).
    """
    agreement = pixel_agreement(model, data)  # every pixel has as many components: means agree
    used = _used_pixels(data)
    return {
        "frame": agreement[data.shortcut & used].mean().item(),
        "digit": agreement[~data.shortcut & used].mean().item(),
    }


def _used_pixels(data: ShortcutDigits) -> Tensor:
    """Pixels that are non-zero in some training image: bool ``(H, W)``."""
    return (data.x_train != 0).flatten(0, 1).any(0)


def _per_method(hparams: dict[str, dict] | None, methods) -> dict[str, dict]:
    """Every method's own keyword arguments (``{}`` where ``hparams`` names none)."""
    hparams = {} if hparams is None else dict(hparams)
    unknown = sorted(set(hparams) - set(methods))
    if unknown:
        raise ValueError(f"hparams names methods {unknown} that are not in methods {list(methods)}")
    return {method: dict(hparams.get(method, {})) for method in methods}


def env_sweep(
    env_counts,
    methods=("ERM", "AND-mask"),
    seeds: Sequence[int] | None = None,
    device=None,
    hparams: dict[str, dict] | None = None,
    **train_kw,
) -> pd.DataFrame:
    """Train each method on the benchmark built with each environment count, for each seed.

    Returns a long DataFrame with columns ``envs``, ``seed``, ``method``, ``id``, ``shift``,
    ``new`` (accuracies) and ``grad_on_frame``. For one seed every count uses the same digits
    (only their partition differs); a seed changes the data, the codes and the initialisation.
    ``seeds`` default: the run's ``hvnotes.derive_seed(0)``. ``hparams`` maps a method to its
    own keyword arguments for :func:`train` (e.g. ``{"AND-mask": {"tau": 0.75}}``); ``train_kw``
    go to every method.
    """
    seeds = [seeding.derive_seed(0)] if seeds is None else list(seeds)
    hparams = _per_method(hparams, methods)
    rows = []
    for n_envs, seed in ((n, s) for n in env_counts for s in seeds):
        data = datasets.shortcut_digits(n_envs=n_envs, seed=seed).to(device or "cpu")
        for method in methods:
            model = train(method, data, seed=seed, **(train_kw | hparams[method])).model
            grads = rrr.input_gradients(model, data.x_id)
            rows.append(
                {
                    "envs": int(n_envs),
                    "seed": seed,
                    "method": method,
                    "id": accuracy(model, data.x_id, data.y_test),
                    "shift": accuracy(model, data.x_shift, data.y_test),
                    "new": accuracy(model, data.x_new, data.y_test),
                    "grad_on_frame": rrr.gradient_mass(grads, data.shortcut).mean().item(),
                }
            )
    return pd.DataFrame(rows)


def seed_table(
    data: ShortcutDigits,
    methods=METHODS,
    seeds: Sequence[int] | None = None,
    hparams: dict[str, dict] | None = None,
    **train_kw,
) -> pd.DataFrame:
    """Is each method's answer hard to vary across training seeds?

    Trains every method with every seed and returns one row per method: ``shift_mean`` and
    ``shift_std`` (shifted-test accuracy over seeds), ``seed_agreement`` (fraction of shifted
    test digits on which all seeds predict the same class) and ``grad_on_frame`` (mean over
    seeds). ``seeds`` default: the run's ``hvnotes.derive_seed(0)``, ``(1)`` and ``(2)``.
    ``hparams``: per-method keyword arguments, as in :func:`env_sweep`.
    """
    if seeds is None:
        seeds = [seeding.derive_seed(k) for k in range(3)]
    hparams = _per_method(hparams, methods)
    rows = []
    for method in methods:
        preds, shift, mass = [], [], []
        for seed in seeds:
            model = train(method, data, seed=seed, **(train_kw | hparams[method])).model
            preds.append(predict(model, data.x_shift))
            shift.append((preds[-1] == data.y_test).float().mean().item())
            grads = rrr.input_gradients(model, data.x_id)
            mass.append(rrr.gradient_mass(grads, data.shortcut).mean().item())
        preds = torch.stack(preds)
        rows.append(
            {
                "method": method,
                "shift_mean": float(np.mean(shift)),
                "shift_std": float(np.std(shift)),
                "seed_agreement": (preds == preds[0]).all(0).float().mean().item(),
                "grad_on_frame": float(np.mean(mass)),
            }
        )
    return pd.DataFrame(rows).set_index("method")


def plot_reasons(trained: dict[str, nn.Module], data: ShortcutDigits, n: int = 6):
    """A figure grid: the first ``n`` in-distribution test digits, then for every method its
    input-gradient map ``|g|`` (scaled to each image's maximum) and its sufficient subset
    (:func:`sufficient_subsets`: kept digit pixels blue, kept frame pixels orange, the image
    faint grey behind). The digit's 8x8 area is outlined.

    Returns the matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    x = data.x_id[:n]
    pool = data.x_train.flatten(0, 1)
    frame = data.shortcut.cpu()
    rows = [("input", x.cpu().clamp(0, 1))]
    for name, model in trained.items():
        g = rrr.input_gradients(model, x).abs()
        rows.append((f"{name}\n|gradient|", (g / g.flatten(1).amax(1).view(-1, 1, 1)).cpu()))
    for name, model in trained.items():
        keep = sufficient_subsets(model, x, pool).cpu()
        rgb = (1 - 0.3 * x.cpu().clamp(0, 1))[..., None].repeat(1, 1, 1, 3)
        rgb[keep & ~frame] = torch.tensor([0.15, 0.35, 0.85])
        rgb[keep & frame] = torch.tensor([0.95, 0.55, 0.1])
        rows.append((f"{name}\nsubset", rgb))
    width = (data.x_id.shape[-1] - 8) // 2
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n + 1.0, 1.05 * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows):
        cmap = "magma" if "gradient" in label else "gray"
        for c in range(n):
            ax = axes[r, c]
            im = ax.imshow(images[c], cmap=cmap, vmin=0.0, vmax=1.0)
            ax.add_patch(Rectangle((width - 0.5, width - 0.5), 8, 8, fill=False, ec="c", lw=0.8))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"label {int(data.y_test[c])}", fontsize=8)
            if cmap == "magma":
                grad_image = im
        axes[r, 0].set_ylabel(label, fontsize=8)
    grad_axes = [ax for (label, _), row in zip(rows, axes, strict=True) if "gradient" in label
                 for ax in row]  # fmt: skip
    fig.colorbar(grad_image, ax=grad_axes, fraction=0.03, pad=0.02, label="|gradient| / max")
    fig.suptitle(
        "Each model's reasons on the same digits\n"
        "subsets: blue = digit pixels kept, orange = frame pixels kept",
        fontsize=10,
    )
    return fig


# ----------------------------------------------------------------------------- selection


def leave_one_environment_out(
    method: str,
    data: ShortcutDigits,
    grid: dict[str, Sequence] | None = None,
    held_out: int = 0,
    **train_kw,
) -> pd.DataFrame:
    """Choose hyper-parameters without the test domain: train on every environment but
    ``held_out`` and validate on it (its digits wear a code book the model never saw).

    ``grid`` (default :data:`SEARCH`'s entry) maps one knob to its candidate values. Returns one
    row per value with its ``validation`` accuracy and ``chosen`` True for the best (the first
    best on ties). The test sets are not touched.
    """
    grid = SEARCH[method] if grid is None else grid
    if len(grid) != 1:
        raise ValueError(f"grid must name one hyper-parameter, got {sorted(grid)}")
    n_envs = data.x_train.shape[0]
    if not 0 <= held_out < n_envs or n_envs < 2:
        raise ValueError(f"held_out must be an environment in [0, {n_envs}), got {held_out!r}")
    (key, values), keep = next(iter(grid.items())), [e for e in range(n_envs) if e != held_out]
    rest = data._replace(x_train=data.x_train[keep], y_train=data.y_train[keep])
    x_val, y_val = data.x_train[held_out], data.y_train[held_out]
    rows = []
    for value in values:
        model = train(method, rest, **(train_kw | {key: value})).model
        rows.append(
            {
                "method": method,
                "knob": key,
                "value": value,
                "validation": accuracy(model, x_val, y_val),
            }
        )
    table = pd.DataFrame(rows)
    table["chosen"] = False
    table.loc[table["validation"].idxmax(), "chosen"] = True
    return table


# ----------------------------------------------------------------------------- no annotation


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


def disagreement_mask(agreement: Tensor, data: ShortcutDigits, delta: float = 0.05) -> Tensor:
    """An annotation found from the environments alone: the pixels (ever non-zero in training)
    whose :func:`pixel_agreement` is within ``delta`` of the coin-flip level
    :func:`coin_agreement` — where the environments' gradients agree no better than chance."""
    return (agreement < coin_agreement(data.x_train.shape[0]) + delta) & _used_pixels(data)
