"""``K`` independent ReLU MLPs held as stacked weights and evaluated together (one batched
matmul per layer), with their predictions: the models of notebook 05's benchmark, trained side by
side by :mod:`hvnotes.ensembles`.

Model ``k``'s output depends only on its own weights, so member ``k`` is exactly
``models.mlp(in, hidden, out)`` initialised under ``seeds[k]`` (:meth:`MLPs.member` returns it
as that module).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from hvnotes import models, seeding

__all__ = ["MLPs", "accuracy", "n_parameters", "predict"]


class MLPs(nn.Module):
    """``K`` independent ReLU MLPs ``in -> hidden... -> out``, evaluated together.

    Args:
        in_features, hidden, out_features: as in :func:`hvnotes.models.mlp`.
        seeds: one seed per member; member ``k`` starts with the weights ``models.mlp`` draws
            under ``seeding.torch_seed(seeds[k])``.

    ``forward(x)``: ``x`` ``(K, B, *shape)`` with ``prod(shape) == in_features`` -> logits
    ``(K, B, out_features)``. Weights are ``(K, fan_in, fan_out)``, biases ``(K, 1, fan_out)``.
    """

    def __init__(
        self, in_features: int, hidden: Sequence[int], out_features: int, seeds: Sequence[int]
    ) -> None:
        super().__init__()
        seeds = [seeding.resolve_seed(s) for s in seeds]
        if not seeds:
            raise ValueError("seeds must name at least one model")
        self.shape = (int(in_features), tuple(int(h) for h in hidden), int(out_features))
        members = []
        for seed in seeds:
            with seeding.torch_seed(seed):
                members.append(models.mlp(in_features, tuple(hidden), out_features))
        linears = [[m for m in net if isinstance(m, nn.Linear)] for net in members]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([layers[i].weight.detach().T for layers in linears]))
            for i in range(len(linears[0]))
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([layers[i].bias.detach()[None] for layers in linears]))
            for i in range(len(linears[0]))
        )

    @property
    def n_models(self) -> int:
        return self.weights[0].shape[0]

    def layers(self, x: Tensor) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Logits ``(K, R, C)`` of ``x`` ``(K, R, in)``, with every layer's input and
        pre-activation output (for per-environment gradients)."""
        inputs, outputs, h = [], [], x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            inputs.append(h)
            z = torch.baddbmm(b, h, w)
            outputs.append(z)
            h = z if i == last else torch.relu(z)
        return h, inputs, outputs

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 3 or x.shape[0] != self.n_models:
            raise ValueError(f"x must have shape (K={self.n_models}, B, ...), got {tuple(x.shape)}")
        return self.layers(x.flatten(2))[0]

    def member(self, k: int) -> nn.Sequential:
        """Model ``k`` as a plain ``models.mlp`` (a copy, in eval mode)."""
        net = models.mlp(*self.shape).to(self.weights[0].device)
        linears = [m for m in net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for lin, w, b in zip(linears, self.weights, self.biases, strict=True):
                lin.weight.copy_(w[k].T)
                lin.bias.copy_(b[k, 0])
        return net.eval()


@torch.no_grad()
def predict(model: MLPs, x: Tensor, shared: bool = False, batch_size: int = 2048) -> Tensor:
    """Predicted classes ``(K, M)`` of every model: ``x`` ``(K, M, ...)``, each model its own
    inputs, or with ``shared`` ``(M, ...)``, the same inputs for all."""
    if shared:
        x = x.expand(model.n_models, *x.shape)
    out = [model(x[:, i : i + batch_size]).argmax(dim=-1) for i in range(0, x.shape[1], batch_size)]
    return torch.cat(out, dim=1)


def accuracy(model: MLPs, x: Tensor, y: Tensor, shared: bool = False) -> Tensor:
    """Accuracy of every model, ``(K,)``: ``x``, ``y`` ``(K, M, ...)``, ``(K, M)`` (or, with
    ``shared``, ``(M, ...)``, ``(M,)``)."""
    return (predict(model, x, shared) == y).float().mean(dim=-1)


def n_parameters(model: MLPs) -> int:
    """Parameters of one member."""
    return sum(math.prod(p.shape[1:]) for p in model.parameters())
