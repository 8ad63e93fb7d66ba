"""IRMv1's own kind of task, colored digits (the protocol's ``irm_setting``, notebook 05).

In the shortcut benchmark every environment has a code of its own; here the shortcut (the
digit's colour) is the same in every environment and only its strength differs, which is what
IRMv1 is built for. :func:`irm_setting` trains IRMv1, its penalty-free twin and the AND-mask
side by side (:mod:`hvnotes.ensembles`) on colourings redrawn at every step and scores them on
a test environment whose colour mostly lies. Nothing is selected here.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import Tensor

from hvnotes import datasets, ensembles, seeding
from hvnotes.benchmark_protocol import PROTOCOL


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
