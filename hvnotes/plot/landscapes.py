"""The figures of notebook 01 (matplotlib is imported only inside them): landscapes, epsilon-
components coloured by the other environment's loss, and descent paths. Re-exported by
:mod:`hvnotes.consistency`.
"""

from __future__ import annotations

import numpy as np

from hvnotes.landscapes import _as_numpy, epsilon_component

FLOOR = 1e-3  # losses are shown as log10(loss + FLOOR): zero-loss minima stay visible


def plot_landscapes(env_losses, axes, names=("A", "B"), minima=None, labels=("C", "P")):
    """One panel per environment plus the pooled (mean) loss, as ``log10(loss + 1e-3)``.

    Args:
        env_losses: ``(E, n1, n2)`` on ``axes`` (``"ij"`` indexing).
        minima: optional ``(K, 2)`` points to mark, named by ``labels``.

    Returns:
        the ``Figure``.
    """
    import matplotlib.pyplot as plt

    losses = _as_numpy(env_losses, "env_losses")
    panels = [*losses, losses.mean(axis=0)]
    titles = [f"environment {n}: $L_{{{n}}}$" for n in names] + ["pooled: mean over environments"]
    fig, axs = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.0), sharey=True)
    vmin, vmax = np.log10(FLOOR), np.log10(losses.max() + FLOOR)
    for ax, z, title in zip(axs, panels, titles, strict=True):
        im = ax.pcolormesh(axes[0], axes[1], np.log10(z + FLOOR).T, vmin=vmin, vmax=vmax)
        ax.set(title=title, xlabel=r"$\theta_1$", aspect="equal")
        ax.grid(False)
        for k, m in enumerate([] if minima is None else minima):
            ax.plot(*m, "o", mfc="none", mec="w", ms=12, mew=2)
            ax.annotate(labels[k], m, xytext=(8, 8), textcoords="offset points", color="w")
    axs[0].set_ylabel(r"$\theta_2$")
    fig.colorbar(im, ax=axs, label=r"$\log_{10}(\mathrm{loss} + 10^{-3})$", shrink=0.9)
    return fig


def plot_components(env_losses, axes, stars, eps, names=("A", "B"), ax=None):
    """For each environment ``e`` (one panel each) and each ``theta*`` in ``stars``: the component
    ``N^eps_e`` coloured by how far the *other* environment's loss moves on it,
    ``|L_e'(theta) - L_e(theta*)|`` (two environments), over contour lines of ``L_e``."""
    import matplotlib.pyplot as plt

    losses = _as_numpy(env_losses, "env_losses")
    if losses.shape[0] != 2:
        raise ValueError("plot_components draws two environments: env_losses must be (2, n1, n2)")
    fig, axs = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    vmax = float(losses.max())  # one colour scale for both panels
    for e, ax in enumerate(axs):
        shown = np.full(losses.shape[1:], np.nan)
        for star in stars:
            comp = epsilon_component(losses, star, eps, e)
            shown[comp] = np.abs(losses[1 - e][comp] - losses[e][star])
        ax.contour(axes[0], axes[1], losses[e].T, levels=8, colors="0.6", linewidths=0.6)
        im = ax.pcolormesh(axes[0], axes[1], shown.T, vmin=0, vmax=vmax, cmap="magma")
        ax.set(
            title=f"$N^\\varepsilon_{{{names[e]}}}$ coloured by $|L_{{{names[1 - e]}}} - "
            f"L_{{{names[e]}}}(\\theta^*)|$",
            xlabel=r"$\theta_1$",
            aspect="equal",
        )
        ax.grid(False)
    axs[0].set_ylabel(r"$\theta_2$")
    label = r"$|L_{e'}(\theta) - L_e(\theta^*)|$ on $N^\varepsilon_e$"
    fig.colorbar(im, ax=axs, label=label, shrink=0.9)
    return fig


def plot_paths(ax, paths, sites, colors=("tab:blue", "tab:red"), stalled="0.5", every=1):
    """Draw trajectories ``(T, N, 2)`` on ``ax``: thin lines, starts as small circles, endpoints
    coloured by landing site (``sites`` from :func:`landing_sites`; -1 = ``stalled`` colour)."""
    paths = _as_numpy(paths, "paths")[:, ::every]
    sites = np.asarray(sites)[::every]
    for n in range(paths.shape[1]):
        color = colors[sites[n]] if sites[n] >= 0 else stalled
        ax.plot(paths[:, n, 0], paths[:, n, 1], color="w", lw=0.5, alpha=0.6)
        ax.plot(*paths[0, n], "o", ms=3, mfc="none", mec="w", mew=0.6)
        ax.plot(*paths[-1, n], "o", ms=6, color=color, mec="k", mew=0.5)
