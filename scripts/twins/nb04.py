"""Null twins of notebook 04 and its deep dive (see ``scripts/twins/__init__.py``).

Each removes one thing a claim of Sufficient Subset Training credits: the explanation head's
choice (an empty or a random mask of the same size, an untrained head), the gradient that trains
it (the straight-through estimator, the cardinality term), the robust network (training attacks
that never move), the checker's power (a complement left unfilled, a PGD that never moves), and
the post-hoc searches' ordering (random attributions, a random elimination order).
"""

from __future__ import annotations

from twins import Twin

LESSON, DEEP = "04_sst", "04_sst_deep_dive"


def _generator(offset: int):
    import torch

    import hvnotes

    return torch.Generator().manual_seed(hvnotes.derive_seed(offset))


def _explains_nothing(sst_explain):
    import torch

    def twin(model, x, tau=0.5):
        return torch.zeros(x.shape, dtype=torch.bool, device=x.device)

    return twin


def _explains_at_random(sst_explain):
    from hvnotes.sufficiency import random_mask_like

    def twin(model, x, tau=0.5):
        return random_mask_like(sst_explain(model, x, tau), _generator(901))

    return twin


def _head_untrained(train_sst):
    def twin(model, *args, **kwargs):
        start = {k: v.detach().clone() for k, v in model.mask_head.state_dict().items()}
        history = train_sst(model, *args, **kwargs)
        model.mask_head.load_state_dict(start)
        return history

    return twin


def _no_cardinality(sst_loss):
    def twin(*args, **kwargs):
        return sst_loss(*args, **{**kwargs, "xi": 0.0})

    return twin


def _no_straight_through(straight_through):
    from hvnotes.sst import hard_threshold

    return hard_threshold


def _training_never_attacks(training_fill):
    def twin(model, x, keep, target, notion, baseline, eps, alpha, steps, bounds, gen):
        steps = 0 if notion == "robust" else steps  # the random start only, as the released PGD
        return training_fill(
            model, x, keep, target, notion, baseline, eps, alpha, steps, bounds, gen
        )

    return twin


def _complement_unfilled(complement):
    def twin(x, keep, mode, baseline=0.0, generator=None, **kwargs):
        return x.clone()

    return twin


def _pgd_never_moves(pgd_complement):
    def twin(model, x, keep, target, eps, alpha, steps, generator=None, **kwargs):
        return pgd_complement(model, x, keep, target, eps, alpha, 0, generator, **kwargs)

    return twin


def _random_attribution(attribution):
    import torch

    def twin(model, x, method="saliency", n_steps=32):
        g = _generator(902)
        return torch.rand(x.shape, generator=g).to(x.device)

    return twin


def _sis_random_order(greedy_sis):
    import pandas as pd
    import torch

    from hvnotes.posthoc import topk_search

    def twin(model, x, notion="baseline", *, baseline=0.0, timeout=60.0, min_rate=1.0,
             clock=None, skip_at_fill=True, **check_kw):  # fmt: skip
        order = torch.rand(x.shape, generator=_generator(903)).to(x.device)
        keep = topk_search(
            model, x, order, notion, min_rate=min_rate, baseline=baseline, **check_kw
        )
        sizes = keep.flatten(1).float().mean(1).tolist()
        info = pd.DataFrame(
            {"seconds": [0.0] * len(x), "timed_out": [False] * len(x), "size": sizes}
        )
        return keep, info

    return twin


TWINS: list[Twin] = [
    Twin(
        name="sst-explains-nothing",
        notebooks=(LESSON, DEEP),
        target="hvnotes.sst:sst_explain",
        removes="the explanation: the SST head's mask is replaced by the empty mask",
        make=_explains_nothing,
    ),
    Twin(
        name="sst-explains-at-random",
        notebooks=(LESSON, DEEP),
        target="hvnotes.sst:sst_explain",
        removes="the head's choice: a random mask with as many pixels per image as the SST mask",
        make=_explains_at_random,
    ),
    Twin(
        name="sst-head-untrained",
        notebooks=(LESSON, DEEP),
        target="hvnotes.sst:train_sst",
        removes="the explanation head's training: its weights are put back to their initial "
        "values after training (the classifier stays trained)",
        make=_head_untrained,
    ),
    Twin(
        name="sst-no-cardinality",
        notebooks=(LESSON, DEEP),
        target="hvnotes.sst:sst_loss",
        removes="the cardinality term: ξ = 0 in every SST training",
        make=_no_cardinality,
    ),
    Twin(
        name="sst-no-straight-through",
        notebooks=(LESSON, DEEP),
        target="hvnotes.sst:straight_through",
        removes="the straight-through gradient: the mask is the released code's hard threshold",
        make=_no_straight_through,
    ),
    Twin(
        name="robust-training-never-attacks",
        notebooks=(LESSON, DEEP),
        target="hvnotes.sst:_training_fill",
        removes="robust training's attack: its PGD returns its random start (the released bug)",
        make=_training_never_attacks,
    ),
    Twin(
        name="checker-leaves-complement-unfilled",
        notebooks=(LESSON, DEEP),
        target="hvnotes.sufficiency:complement",
        removes="the checker's fill: baseline and probabilistic checks see the input unchanged",
        make=_complement_unfilled,
    ),
    Twin(
        name="checker-pgd-never-moves",
        notebooks=(LESSON, DEEP),
        target="hvnotes.sufficiency:pgd_complement",
        removes="the checker's attack: every PGD returns its random start, as the released one",
        make=_pgd_never_moves,
    ),
    Twin(
        name="attribution-at-random",
        notebooks=(DEEP,),
        target="hvnotes.posthoc:attribution",
        removes="the attribution: saliency and Integrated Gradients replaced by random scores",
        make=_random_attribution,
    ),
    Twin(
        name="sis-random-order",
        notebooks=(DEEP,),
        target="hvnotes.posthoc:greedy_sis",
        removes="greedy selection: SIS keeps the shortest sufficient prefix of a random order",
        make=_sis_random_order,
    ),
]
