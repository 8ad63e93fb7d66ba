"""Per-environment gradients of an MLP from ONE pooled forward/backward (the AND-mask's fast path).

Equal to :func:`hvnotes.andmask.env_gradients` (``torch.func``) for ``nn.Sequential`` stacks of
``nn.Linear`` and per-example layers, and faster: the pooled mean loss is backpropagated once,
hooks keep each linear layer's input ``a`` and output gradient ``d``, and environment ``e``'s
weight gradient is ``sum_b d[e, b]^T a[e, b]`` — one batched matmul (the trick of
per-sample-gradient libraries such as Opacus, summed per environment). The tests check both
paths against each other and against a loop of ``torch.autograd.grad``.

Shapes as in :mod:`hvnotes.andmask`: ``xs`` ``(E, B, ...)``, ``ys`` ``(E, B, ...)``; gradients
``(E, *param.shape)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from hvnotes.validation import check_stacked

#: ``loss_fn(output, target) -> scalar``: the mean loss over the examples given.
LossFn = Callable[[Tensor, Tensor], Tensor]


# Layers that act on each example separately and hold no parameters: the pooled fast path
# below is exact for Sequential stacks of these and nn.Linear.
_PER_EXAMPLE = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.GELU,
    nn.ELU,
    nn.SiLU,
    nn.Softplus,
    nn.Flatten,
    nn.Identity,
    nn.Dropout,  # an independent mask per element, hence per example
)


def supports_pooled(model: nn.Module) -> bool:
    """True when :func:`pooled_env_gradients` is exact for ``model``: an ``nn.Sequential``
    (possibly nested) of ``nn.Linear`` and parameter-free per-example layers (ReLU, Flatten...)."""
    if not isinstance(model, nn.Sequential):
        return False
    for module in model.children():
        if isinstance(module, nn.Sequential):
            if not supports_pooled(module):
                return False
        elif not isinstance(module, (nn.Linear, *_PER_EXAMPLE)):
            return False
    return True


#: losses known to return the mean over the examples they are given (their default reduction)
_MEAN_LOSSES = (
    nn.functional.cross_entropy,
    nn.functional.mse_loss,
    nn.functional.l1_loss,
    nn.functional.nll_loss,
    nn.functional.binary_cross_entropy_with_logits,
)


def _check_mean_loss(loss_fn: LossFn, loss: Tensor, outs: Tensor, ys: Tensor) -> None:
    """Refuse a ``loss_fn`` that is not the mean over its examples (``reduction="sum"``...).

    The pooled path reads the mean of the environments' gradients off the pooled loss, which is
    right only for a mean loss; ``env_gradients`` would average per-environment sums instead, so
    the two paths would make different updates. The environments' losses are recomputed from the
    pooled outputs ``outs`` ``(E, B, ...)`` (no extra forward) and compared with the pooled one;
    the known mean losses of ``torch.nn.functional`` (and ``nn`` loss modules with
    ``reduction="mean"``) skip the check.
    """
    if loss_fn in _MEAN_LOSSES or getattr(loss_fn, "reduction", None) == "mean":
        return
    if len(outs) < 2:
        return  # one environment: the pooled loss is its loss, whatever the reduction
    with torch.no_grad():
        env_mean = torch.stack([loss_fn(o, y) for o, y in zip(outs, ys, strict=True)]).mean()
        pooled = loss.detach()
    if not torch.allclose(pooled, env_mean, rtol=1e-4, atol=1e-6):
        raise ValueError(
            "loss_fn must return the mean loss over the examples it is given (the pooled loss "
            f"{pooled.item():.6g} is not the mean {env_mean.item():.6g} of the environments' "
            "losses: a reduction='sum' loss?); use reduction='mean'"
        )


def _pooled_pass(
    model: nn.Module, loss_fn: LossFn, xs: Tensor, ys: Tensor
) -> tuple[Tensor, list[tuple[str, nn.Linear, Tensor, Tensor]]]:
    """One forward/backward of the pooled mean loss; per Linear: its input ``a`` ``(E, R, in)``
    and the gradient ``d`` ``(E, R, out)`` of the *environment's* mean loss w.r.t. its output
    (``R`` = rows per environment). Sets every ``param.grad`` to the pooled gradient."""
    n_envs, batch = check_stacked(xs, ys)
    if not supports_pooled(model):
        raise TypeError(
            "the pooled per-environment gradients need an nn.Sequential of nn.Linear and "
            f"per-example layers (ReLU, Flatten, ...); got {type(model).__name__}: "
            "use env_gradients instead"
        )
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    inputs: dict[str, Tensor] = {}
    out_grads: dict[str, Tensor] = {}

    def keep(name: str):
        def forward_hook(module, args, output):
            inputs[name] = args[0].detach()
            if output.requires_grad:
                output.register_hook(lambda g: out_grads.__setitem__(name, g))

        return forward_hook

    handles = [m.register_forward_hook(keep(name)) for name, m in linears]
    try:
        for p in model.parameters():
            p.grad = None
        with torch.enable_grad():
            out = model(xs.reshape(n_envs * batch, *xs.shape[2:]))
            loss = loss_fn(out, ys.reshape(n_envs * batch, *ys.shape[2:]))
            _check_mean_loss(loss_fn, loss, out.detach().view(n_envs, batch, *out.shape[1:]), ys)
            loss.backward()
    finally:
        for h in handles:
            h.remove()
    layers = []
    for name, m in linears:
        if name not in out_grads:  # a frozen layer that nothing before it needs
            continue
        # an example only affects its own environment's loss, and the pooled mean loss is
        # (1/E) sum_e L_e: E times the pooled output gradient is the env-loss gradient
        d = out_grads[name].reshape(n_envs, -1, m.out_features) * n_envs
        a = inputs[name].reshape(n_envs, -1, m.in_features)
        layers.append((f"{name}." if name else "", m, a, d))
    return loss.detach(), layers


def pooled_env_gradients(
    model: nn.Module, loss_fn: LossFn, xs: Tensor, ys: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """Per-environment gradients of an MLP from ONE forward/backward on the pooled batch.

    The pooled mean loss is backpropagated once (so every ``param.grad`` holds the ordinary ERM
    gradient); hooks keep each ``nn.Linear``'s input ``a`` ``(E, B, in)`` and output gradient
    ``d`` ``(E, B, out)``. Since an example only affects its own environment's loss, the weight
    gradient of environment ``e`` is ``sum_b d[e, b]^T a[e, b]``: one batched matmul (the trick
    of per-sample-gradient libraries such as Opacus, summed per environment). Equal to
    :func:`env_gradients` when :func:`supports_pooled` is true, and faster.

    Args:
        model, loss_fn, xs, ys: as in :func:`env_gradients`.

    Returns:
        ``(pooled mean loss, {name: (E, *param.shape)})``; side effect: ``param.grad`` is set to
        the pooled-batch gradient (overwritten, not accumulated).
    """
    loss, layers = _pooled_pass(model, loss_fn, xs, ys)
    grads: dict[str, Tensor] = {}
    for prefix, m, a, d in layers:
        if m.weight.requires_grad:
            grads[prefix + "weight"] = torch.bmm(d.transpose(1, 2), a)
        if m.bias is not None and m.bias.requires_grad:
            grads[prefix + "bias"] = d.sum(dim=1)
    return loss, grads


def pooled_sign_counts(
    model: nn.Module, loss_fn: LossFn, xs: Tensor, ys: Tensor, block: int = 2**18
) -> tuple[Tensor, dict[str, Tensor]]:
    """``sum_e sign(g_e)`` per parameter without ever holding the ``(E, ...)`` stack.

    The weight gradients are formed a few environments at a time (``block`` numbers, ~1 MB,
    stays in cache) and reduced to signs at once. With one example per environment the sign of
    an outer product is the outer product of signs, so the count is a single matmul.
    """
    loss, layers = _pooled_pass(model, loss_fn, xs, ys)
    counts: dict[str, Tensor] = {}
    for prefix, m, a, d in layers:
        if m.weight.requires_grad:
            if a.shape[1] == 1:
                counts[prefix + "weight"] = d[:, 0].sign().T @ a[:, 0].sign()
            else:
                chunk = max(1, block // m.weight.numel())
                count = torch.zeros_like(m.weight)
                for i in range(0, a.shape[0], chunk):
                    g = torch.bmm(d[i : i + chunk].transpose(1, 2), a[i : i + chunk])
                    count += g.sign_().sum(dim=0)
                counts[prefix + "weight"] = count
        if m.bias is not None and m.bias.requires_grad:
            counts[prefix + "bias"] = d.sum(dim=1).sign().sum(dim=0)
    return loss, counts
