"""Every data set of the course, built offline and seeded — one module per notebook.

=================  ==============================================================
``images``         ``load_digits``, ``load_mnist_subset`` (shipped in wheels), ``Split``
``shortcuts``      label tab (00); Toy Colors, Decoy MNIST, Iris-Cancer (03)
``environment_shortcuts``  shortcut digits and colored digits, a shortcut per environment (05)
``environments``   linear toy, spirals + shortcuts, random-label digits (02)
``arithmetic``     modular addition and multiplication, pair splits (06)
=================  ==============================================================

Every name is importable from ``hvnotes.datasets`` directly. Images are float32 in [0, 1] with
shape ``(N, H, W)``; labels are int64 ``(N,)``; every random draw takes ``seed`` (None: the run's
``hvnotes.derive_seed(0)``).
"""

from hvnotes.datasets.arithmetic import OPERATIONS, modular_arithmetic, pair_split
from hvnotes.datasets.environments import (
    RandomLabelDigits,
    SpiralEnvs,
    linear_toy,
    random_label_digits,
    spirals,
)
from hvnotes.datasets.images import (
    Split,
    load_digits,
    load_mnist_subset,
)
from hvnotes.datasets.shortcuts import (
    TOY_COLORS_PALETTE,
    ColoredDigits,
    DecoySplit,
    IrisCancer,
    ShortcutDigits,
    ToyColors,
    add_label_tab,
    add_swatch,
    color_digits,
    colored_digits,
    decoy_digits,
    decoy_mnist,
    iris_cancer,
    shortcut_digits,
    swatch_shade,
    toy_colors,
    toy_colors_conflict,
)

__all__ = [
    "OPERATIONS", "TOY_COLORS_PALETTE", "ColoredDigits", "DecoySplit", "IrisCancer", "RandomLabelDigits",
    "ShortcutDigits", "SpiralEnvs", "Split", "ToyColors", "add_label_tab", "add_swatch", "color_digits", "colored_digits",
    "decoy_digits", "decoy_mnist", "iris_cancer", "linear_toy", "load_digits",
    "load_mnist_subset", "modular_arithmetic", "pair_split", "random_label_digits",
    "shortcut_digits", "spirals", "swatch_shade", "toy_colors", "toy_colors_conflict",
]  # fmt: skip
