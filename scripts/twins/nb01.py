"""Null twins of notebook 01 and its deep dive (see ``scripts/twins/__init__.py``).

Each removes one thing a claim of the lesson or the deep dive credits: the AND-mask (nothing
kept, or as many components kept at random), the score's epsilon-region (its restriction to
theta*'s connected component, or the whole region), the pooled-only minimum of the landscape,
the weight decay of the optimiser, and the disjoint inputs of the patchwork's environments.
"""

from __future__ import annotations

from twins import Twin

LESSON, DEEP_DIVE = "01_consistency_of_minima", "01_consistency_of_minima_deep_dive"


def _mask_keeps_nothing(and_mask):
    """Every component vetoed: only weight decay moves the parameters."""
    import torch

    def twin(env_grads, tau):
        return torch.zeros_like(and_mask(env_grads, tau))

    return twin


def _mask_at_random(and_mask):
    """The AND-mask's entries shuffled at every call: as many components kept, chosen by chance."""
    import torch

    import hvnotes
    from hvnotes.consistency import shuffled_mask

    generator = torch.Generator().manual_seed(hvnotes.derive_seed(901))

    def twin(env_grads, tau):
        return shuffled_mask(and_mask(env_grads, tau), generator)

    return twin


def _score_without_component(inconsistency_score):
    """Every grid point within eps of theta*'s loss counts, connected to theta* or not."""

    def twin(env_losses, star, eps, connected=True):
        return inconsistency_score(env_losses, star, eps, connected=False)

    return twin


def _score_at_the_point(inconsistency_score):
    """The epsilon-region shrunk to theta* itself: what the pooled loss sees, nothing around it."""
    import numpy as np

    def twin(env_losses, star, eps, connected=True):
        at_star = np.asarray(env_losses, dtype=float)[(slice(None), *star)]  # (E,)
        return float(np.abs(at_star[:, None] - at_star[None, :]).max())

    return twin


def _landscape_without_patchwork(crossing_valleys):
    """Both environments reduced to the shared bowl: the private valleys, and so P, removed."""
    import torch

    def twin(theta, p=3.0, width=0.6, sigma=1.3):
        bowl = 1 - torch.exp(-(theta**2).sum(-1) / (2 * sigma**2))
        return torch.stack([bowl, bowl])

    return twin


def _no_weight_decay(gradient_descent):
    """The same optimiser with its weight decay set to zero."""

    def twin(loss_fn, theta0, steps, lr, tau=None, weight_decay=0.0, **kwargs):
        return gradient_descent(loss_fn, theta0, steps, lr, tau, 0.0, **kwargs)

    return twin


def _environments_interleaved(patchwork_losses):
    """The patchwork's environments each given every other input over all of [0, 1]."""

    def twin(theta, n_points=200, split="halves"):
        return patchwork_losses(theta, n_points, "interleaved")

    return twin


TWINS: list[Twin] = [
    Twin(
        name="and-mask-keeps-nothing",
        notebooks=(LESSON, DEEP_DIVE),
        target="hvnotes.andmask:and_mask",
        removes="the AND-mask: every component is vetoed, so only weight decay moves the parameters",
        make=_mask_keeps_nothing,
    ),
    Twin(
        name="and-mask-at-random",
        notebooks=(LESSON, DEEP_DIVE),
        target="hvnotes.andmask:and_mask",
        removes="the agreement: a random mask keeping as many components as the AND-mask",
        make=_mask_at_random,
    ),
    Twin(
        name="score-without-component",
        notebooks=(LESSON,),
        target="hvnotes.consistency:inconsistency_score",
        removes="the connected component: every point within eps of theta*'s loss counts",
        make=_score_without_component,
    ),
    Twin(
        name="score-at-the-point",
        notebooks=(LESSON, DEEP_DIVE),
        target="hvnotes.consistency:inconsistency_score",
        removes="the eps-region: the score looks at theta* alone, as the pooled loss does",
        make=_score_at_the_point,
    ),
    Twin(
        name="landscape-without-patchwork",
        notebooks=(LESSON, DEEP_DIVE),
        target="hvnotes.consistency:crossing_valleys",
        removes="the pooled-only minimum: both environments are the shared bowl, with no valleys",
        make=_landscape_without_patchwork,
    ),
    Twin(
        name="no-weight-decay",
        notebooks=(LESSON, DEEP_DIVE),
        target="hvnotes.consistency:gradient_descent",
        removes="the weight decay after the mask: set to zero",
        make=_no_weight_decay,
    ),
    Twin(
        name="patchwork-environments-interleaved",
        notebooks=(DEEP_DIVE,),
        target="hvnotes.consistency:patchwork_losses",
        removes="the disjoint inputs: A and B each hold every other input over all of [0, 1]",
        make=_environments_interleaved,
    ),
]
