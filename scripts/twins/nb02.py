"""Null twins of notebook 02 and its deep dive (see ``scripts/twins/__init__.py``).

Every AND-masked update of :mod:`hvnotes.andmask` takes its mask from ``agreement_mask`` (the
pooled fast path, ``and_mask``, ``masked_gradient``, the geometric mean and the random-mask
twin alike), so the first three twins replace the mask everywhere at once; ``tau = 0`` (ERM)
never forms a mask and is left as it is. The next two remove what the training step credits:
weight decay after the mask, and training itself. The last two remove the masks of the
relatives that do not go through ``agreement_mask``: the SAND-mask and Temporal AND-mask Adam.
"""

from __future__ import annotations

from twins import Twin

LESSON, DEEP_DIVE = "02_and_mask", "02_and_mask_deep_dive"


def _keeps_nothing(agreement_mask):
    import torch

    return lambda sign_count, n_envs, tau: torch.zeros_like(sign_count)


def _keeps_everything(agreement_mask):
    import torch

    return lambda sign_count, n_envs, tau: torch.ones_like(sign_count)


def _random_positions(agreement_mask):
    """The AND-mask's kept count at random positions: sign agreement no longer chooses them."""
    import torch

    import hvnotes

    generator = torch.Generator().manual_seed(hvnotes.derive_seed(901))

    def twin(sign_count, n_envs, tau):
        mask = agreement_mask(sign_count, n_envs, tau)
        order = torch.randperm(mask.numel(), generator=generator).to(mask.device)
        return mask.flatten()[order].view_as(mask)

    return twin


def _no_weight_decay(and_mask_step):
    """The same step with every optimizer group's weight decay set to 0 (L2 after the mask gone)."""

    def twin(model, loss_fn, xs, ys, optimizer, *args, **kwargs):
        for group in optimizer.param_groups:
            group["weight_decay"] = 0.0
        return and_mask_step(model, loss_fn, xs, ys, optimizer, *args, **kwargs)

    return twin


def _untrained(and_mask_step):
    """The step's loss is measured, the weights never change: the network stays at its init."""
    import torch

    def twin(model, loss_fn, xs, ys, optimizer, *args, **kwargs):
        with torch.no_grad():
            loss = loss_fn(model(xs.flatten(0, 1)), ys.flatten(0, 1))
        kept = {name: 0.0 for name, p in model.named_parameters() if p.requires_grad}
        return loss.item(), kept

    return twin


def _sand_keeps_everything(sand_mask):
    import torch

    return lambda env_grads, tau, k: torch.ones_like(env_grads[0])


def _temporal_mask_off(optimizer_class):
    """Temporal AND-mask Adam with tau = 0: every sign average passes, so it is AdamW."""

    class TemporalMaskOff(optimizer_class):
        def __init__(self, params, *args, **kwargs):
            super().__init__(params, *args, **kwargs)
            for group in self.param_groups:
                group["tau"] = 0.0

    return TemporalMaskOff


TWINS: list[Twin] = [
    Twin(
        name="agreement-keeps-nothing",
        notebooks=(LESSON, DEEP_DIVE),
        target="hvnotes.andmask:agreement_mask",
        removes="the mask's pass: every component is vetoed, so only weight decay moves the weights",
        make=_keeps_nothing,
    ),
    Twin(
        name="and-mask-keeps-everything",
        notebooks=(LESSON, DEEP_DIVE),
        target="hvnotes.andmask:agreement_mask",
        removes="the agreement test: every component passes, so the update is the plain average",
        make=_keeps_everything,
    ),
    Twin(
        name="and-mask-random-positions",
        notebooks=(LESSON, DEEP_DIVE),
        target="hvnotes.andmask:agreement_mask",
        removes="sign agreement: as many components kept as the AND-mask keeps, at random positions",
        make=_random_positions,
    ),
    Twin(
        name="masked-step-without-weight-decay",
        notebooks=(LESSON, DEEP_DIVE),
        target="hvnotes.andmask:and_mask_step",
        removes="weight decay after the mask: every optimizer's weight decay set to 0",
        make=_no_weight_decay,
    ),
    Twin(
        name="untrained-network",
        notebooks=(LESSON, DEEP_DIVE),
        target="hvnotes.andmask:and_mask_step",
        removes="training: each step measures the loss and leaves the weights at their init",
        make=_untrained,
    ),
    Twin(
        name="sand-mask-keeps-everything",
        notebooks=(DEEP_DIVE,),
        target="hvnotes.andmask:sand_mask",
        removes="the SAND-mask's soft veto: every component passes with weight 1 (averaging)",
        make=_sand_keeps_everything,
        stop_after={DEEP_DIVE: "relatives = ["},  # the SAND-mask's only claim is in section 2
    ),
    Twin(
        name="temporal-mask-off",
        notebooks=(DEEP_DIVE,),
        target="hvnotes.andmask:TemporalAndMaskAdam",
        removes="the temporal mask: tau = 0, so Temporal AND-mask Adam is AdamW",
        make=_temporal_mask_off,
    ),
]
