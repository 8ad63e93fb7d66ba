"""Null twins of notebook 00 (see ``scripts/twins/__init__.py``)."""

from __future__ import annotations

from twins import Twin


def _tab_says_nothing(add_label_tab):
    """The same framed images and bright pixel, lit at a random position instead of the label."""
    import torch

    import hvnotes

    def twin(images, tab, brightness=3.0):
        generator = torch.Generator().manual_seed(hvnotes.derive_seed(900))
        random_tab = torch.randint(0, images.shape[2] + 2, tab.shape, generator=generator)
        return add_label_tab(images, random_tab, brightness)

    return twin


TWINS: list[Twin] = [
    Twin(
        name="tab-says-nothing",
        notebooks=("00_map",),
        target="hvnotes.datasets:add_label_tab",
        removes="the shortcut: the tab is lit at a random position, so it no longer tells the label",
        make=_tab_says_nothing,
    ),
]
