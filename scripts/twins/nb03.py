"""Null twins of notebook 03 and its deep dive (see ``scripts/twins/__init__.py``).

Every RRR model of both notebooks is trained by ``rrr.fit_rrr`` (directly, through
``rrr.train_mlp``, or through ``rrr.find_another_explanation``), so its twins remove what RRR
credits at that one place: the penalty (lambda_1 = 0) or the annotations' position (moved off the
rules and the shortcut). The third removes what find-another-explanation credits: the memory of
earlier rounds.
"""

from __future__ import annotations

from twins import Twin


def _lambda_zero(fit_rrr):
    """The same training, the same annotations, the right-reasons term weighted 0."""

    def twin(model, x, y, annotations, l2_grads, **kwargs):
        return fit_rrr(model, x, y, annotations, 0.0, **kwargs)

    return twin


def _moved_off(annotations):
    """The same annotations, moved to where neither Toy Colors rule nor the decoy swatch lies.

    Toy Colors ``(..., 5, 5, 3)``: shifted two rows and two columns (corners and top-middle land
    on the 18 pixels of neither rule); 28x28 images: shifted 12 columns along the edge (no swatch
    is ever there); feature vectors (Iris-Cancer): shifted half-way, off the Iris columns.
    """
    import torch

    if annotations.ndim >= 3 and tuple(annotations.shape[-3:]) == (5, 5, 3):
        return torch.roll(annotations, shifts=(2, 2), dims=(-3, -2))
    if annotations.ndim >= 2 and tuple(annotations.shape[-2:]) == (28, 28):
        return torch.roll(annotations, shifts=12, dims=-1)
    return torch.roll(annotations, shifts=annotations.shape[-1] // 2, dims=-1)


def _annotations_off_the_shortcut(fit_rrr):
    def twin(model, x, y, annotations, l2_grads, **kwargs):
        return fit_rrr(model, x, y, _moved_off(annotations), l2_grads, **kwargs)

    return twin


def _fae_forgets(find_another_explanation):
    """Each round annotated with the previous round's mask only, not the union of all earlier ones."""

    def twin(make_model, x, y, rounds, l2_grads, cutoff=0.67, channel_dim=None, annotations=None,
             eval_sets=None, init_seed=None, **fit_kwargs):  # fmt: skip
        from hvnotes import seeding

        lams = [l2_grads] * rounds if isinstance(l2_grads, int | float) else list(l2_grads)
        first = seeding.resolve_seed(init_seed, "init_seed")
        out = []
        for i, lam in enumerate(lams):
            (r,) = find_another_explanation(
                make_model, x, y, 1, [lam], cutoff, channel_dim, annotations, eval_sets,
                first + i, **fit_kwargs,
            )  # fmt: skip
            out.append(r)
            annotations = r.mask  # forgets every earlier round's mask
        return out

    return twin


NOTEBOOKS = ("03_rrr", "03_rrr_deep_dive")
TWINS: list[Twin] = [
    Twin(
        name="rrr-lambda-zero",
        notebooks=NOTEBOOKS,
        target="hvnotes.rrr:fit_rrr",
        removes="the penalty: every RRR run trains with lambda_1 = 0 (plain training, same annotations)",
        make=_lambda_zero,
    ),
    Twin(
        name="rrr-annotations-off-the-shortcut",
        notebooks=NOTEBOOKS,
        target="hvnotes.rrr:fit_rrr",
        removes="where the annotations are: the same masks, moved off both rules and the swatch",
        make=_annotations_off_the_shortcut,
    ),
    Twin(
        name="fae-forgets-earlier-rounds",
        notebooks=NOTEBOOKS,
        target="hvnotes.rrr:find_another_explanation",
        removes="FAE's memory: each round is annotated with the previous round's mask only",
        make=_fae_forgets,
    ),
]
