"""Null twins of notebook 05 and its deep dive (see ``scripts/twins/__init__.py``).

Each removes exactly what one claim credits: the environments' agreement (a random mask that
keeps as much), the right-reasons penalty, IRMv1's penalty, the environment labels behind the
found annotation, the shortcut itself, or training altogether.
"""

from __future__ import annotations

from twins import Twin

NOTEBOOKS = ("05_benchmark", "05_benchmark_deep_dive")
LESSON = ("05_benchmark",)  # the deep dive trains only ERM and the AND-mask


def _random_mask_same_fraction(agreement_mask):
    """The AND-mask's kept fraction, per model and tensor, kept at random places."""
    import torch

    import hvnotes

    generator = torch.Generator().manual_seed(hvnotes.derive_seed(901))

    def twin(env_grads, tau):
        mask = agreement_mask(env_grads, tau)
        flat = mask.flatten(1)
        noise = torch.rand(flat.shape, generator=generator).to(flat.device)
        kept = flat.sum(dim=1, keepdim=True)
        rank = noise.argsort(dim=1).argsort(dim=1)
        return (rank < kept).to(mask.dtype).view_as(mask)

    return twin


def _shuffled_soft_mask(soft_agreement_mask):
    """The SAND-mask's values, per model and tensor, moved to random places."""
    import torch

    import hvnotes

    generator = torch.Generator().manual_seed(hvnotes.derive_seed(902))

    def twin(env_grads, tau, k):
        mask = soft_agreement_mask(env_grads, tau, k)
        flat = mask.flatten(1)
        order = torch.rand(flat.shape, generator=generator).argsort(dim=1).to(flat.device)
        return flat.gather(1, order).view_as(mask)

    return twin


def _no_penalty(irm_penalties):
    def twin(logits, y):
        return irm_penalties(logits, y) * 0.0

    return twin


def _no_right_reasons(right_reasons):
    def twin(model, x, annotations):
        logits, penalty = right_reasons(model, x, annotations)
        return logits, penalty * 0.0

    return twin


def _environments_shuffled(pixel_agreement):
    """Agreement measured after the training digits are dealt into environments at random:
    the same data, but an 'environment' no longer has a code book of its own."""
    import torch

    import hvnotes

    def twin(model, data):
        generator = torch.Generator().manual_seed(hvnotes.derive_seed(903))
        n_envs, n = data.y_train.shape
        order = torch.randperm(n_envs * n, generator=generator).to(data.y_train.device)
        x = data.x_train.flatten(0, 1)[order].view_as(data.x_train)
        y = data.y_train.flatten()[order].view_as(data.y_train)
        return pixel_agreement(model, data._replace(x_train=x, y_train=y))

    return twin


def _frame_says_nothing(shortcut_digits):
    """The same digits and code books, but each training digit wears the code of a random class
    (the frame no longer tells the label in training)."""
    import torch

    import hvnotes

    def twin(*args, **kwargs):
        data = shortcut_digits(*args, **kwargs)
        generator = torch.Generator().manual_seed(hvnotes.derive_seed(904))
        n_envs = data.codes.shape[0]
        random_class = torch.randint(0, 10, data.y_train.shape, generator=generator)
        frame = data.shortcut
        codes = data.codes[torch.arange(n_envs)[:, None], random_class]
        return data._replace(x_train=torch.where(frame, codes, data.x_train))

    return twin


def _untrained(fit):
    """Training that does nothing: every model keeps its initial weights."""
    import pandas as pd

    def twin(method, model, batches, *, steps, **kwargs):
        model.eval()
        return pd.DataFrame({"step": [steps], "loss": [float("nan")]})

    return twin


TWINS: list[Twin] = [
    Twin(
        name="and-mask-random-same-fraction",
        notebooks=NOTEBOOKS,
        target="hvnotes.ensembles:agreement_mask",
        removes="the environments' agreement: the AND-mask keeps as many gradient components, "
        "at random places",
        make=_random_mask_same_fraction,
    ),
    Twin(
        name="sand-mask-shuffled",
        notebooks=LESSON,
        target="hvnotes.ensembles:soft_agreement_mask",
        removes="the environments' agreement: the SAND-mask's values, moved to random components",
        make=_shuffled_soft_mask,
    ),
    Twin(
        name="irm-penalty-zero",
        notebooks=LESSON,
        target="hvnotes.ensembles:irm_penalties",
        removes="IRMv1's penalty: ERM with IRMv1's Adam reset",
        make=_no_penalty,
    ),
    Twin(
        name="rrr-penalty-zero",
        notebooks=LESSON,
        target="hvnotes.ensembles:right_reasons",
        removes="the right-reasons penalty (lambda_1 = 0): ERM under RRR's name",
        make=_no_right_reasons,
    ),
    Twin(
        name="environments-shuffled",
        notebooks=NOTEBOOKS,
        target="hvnotes.benchmark:pixel_agreement",
        removes="the environment labels: agreement is measured on environments dealt at random",
        make=_environments_shuffled,
    ),
    Twin(
        name="frame-says-nothing",
        notebooks=NOTEBOOKS,
        target="hvnotes.datasets:shortcut_digits",
        removes="the shortcut: each training digit wears the code of a random class",
        make=_frame_says_nothing,
    ),
    Twin(
        name="untrained",
        notebooks=NOTEBOOKS,
        target="hvnotes.ensembles:fit",
        removes="training: every model keeps its initial weights",
        make=_untrained,
    ),
]
