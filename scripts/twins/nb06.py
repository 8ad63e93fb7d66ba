"""Null twins of notebook 06 and its deep dive (see ``scripts/twins/__init__.py``).

Each removes what one claim credits: weight decay (grokking, E2), the probe an explanation reads
(E1's prime count, E3's Fourier concentration and top-frequency projection, the group's circle,
E4's collapse probe, StableMax), or a rival's own predictions (replaced by the null rival's).
"""

from __future__ import annotations

from twins import Twin

BOTH = ("06_capstone", "06_capstone_deep_dive")


def _no_weight_decay(run_grokking):
    """Every run trained as registered, but with weight decay 0."""

    def twin(*args, weight_decay=1.0, **kwargs):
        zero = [0.0] * len(weight_decay) if isinstance(weight_decay, list | tuple) else 0.0
        return run_grokking(*args, weight_decay=zero, **kwargs)

    return twin


def _projection_keeps_random_frequencies(fourier_project):
    """E3's projection on the top frequencies replaced by its own energy-matched control."""
    import torch

    import hvnotes

    def twin(embed, k=6, which="top", order=None, generator=None):
        if which == "top":
            gen = torch.Generator().manual_seed(hvnotes.derive_seed(906))
            return fourier_project(embed, k, "random", order, gen)
        return fourier_project(embed, k, which, order, generator)

    return twin


def _flat_concentration(fourier_concentration):
    """E3's probe reads nothing: every table gets the share a flat spectrum gives."""
    import torch

    def twin(embed, k=4, order=None):
        n = embed.shape[-2] if order is None else len(order)
        return torch.full(embed.shape[:-2], k / (n // 2))

    return twin


def _no_primes(prime_counts):
    """E1's probe reads nothing: no weight is ever counted as prime."""
    import numpy as np

    def twin(flat, scale, absolute):
        return np.zeros(len(flat), dtype=np.int64)

    return twin


def _no_collapse_probe(exact_zero_rate):
    """E4's probe reads nothing: no loss is ever counted as exactly zero."""
    import torch

    def twin(losses, mask):
        return torch.zeros(losses.shape[0], dtype=losses.dtype, device=losses.device)

    return twin


def _softmax_for_stablemax(stablemax_cross_entropy):
    """StableMax removed: the runs registered with it train on softmax cross-entropy."""
    import torch

    def twin(logits, y):
        return torch.nn.functional.cross_entropy(
            logits.transpose(1, -1) if logits.dim() > 2 else logits, y, reduction="none"
        )

    return twin


def _token_circle(group_order):
    """The group's circle replaced by the token circle: multiplication read in token order."""
    import torch

    def twin(p, operation="add"):
        return torch.arange(p) if operation == "add" else torch.arange(1, p)

    return twin


def _null_predictions_for_e2(load_registration):
    """E2's registered predictions replaced by the null rival's on the same observable."""
    import copy

    from hvnotes import explanations

    def twin(name="grokking"):
        registration = load_registration(name)
        data = copy.deepcopy(registration.data)
        for rivals in data["predictions"].values():
            observables = {explanations.OBSERVABLE[c] for c in rivals.get("E2", [])}
            rivals["E2"] = [c for c in rivals["null"] if explanations.OBSERVABLE[c] in observables]
        return explanations.Registration(data)

    return twin


TWINS: list[Twin] = [
    Twin(
        name="grokking-without-decay",
        notebooks=BOTH,
        target="hvnotes.phenomena:run_grokking",
        removes="weight decay: every run, prompting and registered, trains with decay 0",
        make=_no_weight_decay,
    ),
    Twin(
        name="projection-keeps-random-frequencies",
        notebooks=BOTH,
        target="hvnotes.probes:fourier_project",
        removes="E3's top frequencies: the projection keeps k random ones of the same energy",
        make=_projection_keeps_random_frequencies,
    ),
    Twin(
        name="flat-fourier-probe",
        notebooks=("06_capstone",),  # the deep dive asserts nothing the concentration probe reads
        target="hvnotes.probes:fourier_concentration",
        removes="E3's probe: every embedding reads as a flat spectrum",
        make=_flat_concentration,
    ),
    Twin(
        name="no-primes",
        notebooks=BOTH,
        target="hvnotes.probes:_prime_counts",
        removes="E1's probe: no rounded weight is ever counted as prime",
        make=_no_primes,
    ),
    Twin(
        name="no-collapse-probe",
        notebooks=BOTH,
        target="hvnotes.probes:exact_zero_rate",
        removes="E4's probe: no loss is ever counted as exactly zero",
        make=_no_collapse_probe,
    ),
    Twin(
        name="softmax-for-stablemax",
        notebooks=BOTH,
        target="hvnotes.probes:stablemax_cross_entropy",
        removes="StableMax: the runs registered with it train on softmax cross-entropy",
        make=_softmax_for_stablemax,
    ),
    Twin(
        name="token-circle",
        notebooks=("06_capstone_deep_dive",),
        target="hvnotes.phenomena:group_order",
        removes="the group's circle: multiplication is read in token order",
        make=_token_circle,
    ),
    Twin(
        name="null-predictions-for-e2",
        notebooks=BOTH,
        target="hvnotes.explanations:load_registration",
        removes="E2's own predictions: the null rival's in their place",
        make=_null_predictions_for_e2,
    ),
]
