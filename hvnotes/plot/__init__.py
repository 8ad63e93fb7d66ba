"""The course's figures: its one plot theme and the small figures several notebooks share here,
and each notebook's own figures in a module of this package (:mod:`hvnotes.plot.landscapes`,
notebook 01's loss landscapes)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

#: Every figure of the course has this size (inches) and resolution unless a cell says otherwise.
FIGSIZE = (6.4, 4.0)
DPI = 100


def set_theme() -> None:
    """Apply the course theme: seaborn ``whitegrid``, colour-blind palette, fixed size and dpi."""
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")
    plt.rcParams.update(
        {
            "figure.figsize": FIGSIZE,
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "image.cmap": "viridis",
            "axes.titlesize": "medium",
            "figure.autolayout": False,
        }
    )


def image_grid(
    images,
    titles=None,
    ncols: int = 8,
    cmap: str = "gray",
    vmin=None,
    vmax=None,
    size: float = 1.2,
    suptitle: str | None = None,
):
    """Show a batch of images in a grid.

    Args:
        images: array or tensor of shape ``(N, H, W)`` (grey) or ``(N, H, W, 3)`` (colour).
        titles: optional sequence of ``N`` strings.
        ncols: images per row.
        size: inches per image.

    Returns:
        the matplotlib ``Figure``.
    """
    images = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, 3), got {images.shape}")
    n = len(images)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows + 0.3), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap, vmin=vmin, vmax=vmax)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
