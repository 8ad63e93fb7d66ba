"""hvnotes: the companion package of the course *Explanations that are hard to vary*.

One module per idea, each meant to be read beside its notebook:

=========================  ======================================================
``validation``             the one place that checks input: tensors, labels, masks
                           (and its parts ``validation_numbers``, ``validation_models``:
                           numbers; the model contract and its train/eval mode)
``seeding``                the run's base seed and the seeds every draw derives from
``datasets``               every data set, generated offline and seeded
``models``                 small MLPs, the two-headed SST network, the grokking network
``batches``                the batches trainers draw: minibatches, environment-stacked
                           and model-stacked ones
``evaluation``             ``predict``, ``accuracy``, ``cross_entropy``
``masked_step``            one AND-masked training step (the tensor maths of 02)
``rrr_objective``          the RRR loss on one batch (03)
``sst_objective``          SST's mask, fills and dual loss (04)
``algorithms``             every method as a DomainBed-style ``Algorithm``:
                           ``update(batch)``, ``predict(x)``
``hparams``                the one registry of the algorithms' hyper-parameters
``train``                  the one training loop: ``run(algorithm.update, batches)``,
                           ``fit`` / ``fit_algorithm`` (minibatch epochs)
``consistency``            the epsilon-inconsistency score (01); ``landscapes``,
                           ``hessian_means``, ``descent`` hold its parts
``andmask``                the AND-mask family and its trainer (02); ``agreement``,
                           ``env_gradients``, ``pooled``, ``temporal``,
                           ``random_gradients`` hold its parts
``rrr``                    RRR's trainers and find-another-explanation (03);
                           ``input_gradients`` and ``rule_use`` hold its parts
``sst``                    Sufficient Subset Training's trainers (04); exposes the checker
``notions``                the three notions of sufficiency and their argument checks
``sufficiency``            the sufficiency checker (shares no code with SST training);
                           ``complement_fills`` fills the complement
``released``               the released SST code's fills, rebuilt for an audit (04)
``posthoc``                post-hoc baselines (greedy SIS, top-k saliency / IG), timing
``stacked_mlps``           ``K`` MLPs held as stacked weights, evaluated together
``ensembles``              the benchmark's methods training such a stack side by side
``benchmark``              one shortcut benchmark, every method (05); its protocol in
                           ``benchmark_protocol``; ``benchmark_annotation``,
                           ``benchmark_behaviour``, ``benchmark_colored_digits`` hold its parts
``grokking``               grokking runs trained side by side (06)
``phenomena``              reading grokking runs: fit and grok times, E3's ablation
``probes``                 what the rival explanations of grokking measure
``explanations``           the rules that score registered predictions; ``registration``
                           (the file, its digest) and ``registered_runs`` hold its parts
``plot``                   the course's plot theme and figures
``checks``                 exercise checkers that print one fixed line
``times``                  each notebook's measured run time and study time (the map)
=========================  ======================================================

Start every notebook with ``device = hvnotes.setup(0)``, and take every seed from
``hvnotes.derive_seed(k)``: ``HVNOTES_SEED=<int>`` then replaces the base seed of the whole run.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from hvnotes.seeding import base_seed, derive_seed

__version__ = "0.1.0"
__all__ = ["FAST", "base_seed", "derive_seed", "setup", "__version__"]

#: True when ``HVNOTES_FAST=1``: notebooks shrink their runs to smoke-test size.
FAST: bool = os.environ.get("HVNOTES_FAST", "0") == "1"


def _threads_from_env() -> int:
    raw = os.environ.get("HVNOTES_THREADS", "1")
    try:
        threads = int(raw)
    except ValueError:
        raise ValueError(f"HVNOTES_THREADS must be a positive integer, got {raw!r}") from None
    if threads < 1:
        raise ValueError(f"HVNOTES_THREADS must be a positive integer, got {raw!r}")
    return threads


def _device_from_env() -> torch.device:
    choice = os.environ.get("HVNOTES_DEVICE", "auto").lower()
    if choice not in {"auto", "cpu", "cuda"}:
        raise ValueError(f"HVNOTES_DEVICE must be 'auto', 'cpu' or 'cuda', got {choice!r}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("HVNOTES_DEVICE='cuda' was asked for, but torch sees no CUDA device")
    if choice == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def setup(seed: int = 0) -> torch.device:
    """Make a notebook reproducible and return the device to compute on.

    Sets the run's base seed (``seed``, or ``HVNOTES_SEED`` when that is set; see
    :mod:`hvnotes.seeding`) and seeds ``random``, NumPy and torch (CUDA included) with it; sets
    torch's CPU threads to 1 unless ``HVNOTES_THREADS`` says otherwise (tiny models run
    *slower* with more threads on a shared 2-core machine); flushes denormal floats to zero on
    the CPU (``torch.set_flush_denormal``: weight decay drives unused weights towards zero, into
    the denormal range, where CPU arithmetic is several times slower; only numbers below about
    1e-38 change); prints tensors with 3 decimals and no scientific notation
    (``torch.set_printoptions``); applies the course's plot theme; returns CUDA when available
    unless ``HVNOTES_DEVICE=cpu``. Nothing else in the package changes global state.

    Args:
        seed: a non-negative integer, the base seed unless ``HVNOTES_SEED`` overrides it.
    """
    from hvnotes import seeding

    seed = seeding.seed_from_env(seed)
    seeding.set_base_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.set_num_threads(_threads_from_env())
    torch.set_flush_denormal(True)
    torch.set_printoptions(precision=3, sci_mode=False)

    from hvnotes import plot  # imported here: matplotlib is slow to import

    _inline_figures_in_notebooks()
    plot.set_theme()
    return _device_from_env()


def _inline_figures_in_notebooks() -> None:
    """Show figures inline in a Jupyter kernel even when ``MPLBACKEND=Agg`` is set (as in tests)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
        shell.run_line_magic("matplotlib", "inline")
