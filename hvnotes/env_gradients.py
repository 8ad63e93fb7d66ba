"""Per-environment gradients with ``torch.func``: one ``vmap(grad(...))`` over the environment axis,
for any model whose examples do not interact (the general path of the AND-mask step; MLPs take
the faster :mod:`hvnotes.pooled`). Re-exported by :mod:`hvnotes.andmask`.

Shapes: inputs ``xs`` ``(E, B, ...)``, targets ``ys`` ``(E, B, ...)``; gradients ``(E, *param.shape)``.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from hvnotes import validation
from hvnotes.pooled import LossFn
from hvnotes.validation import (
    check_input_dtype,
    check_stacked,
    check_tensor,
)


def _trainable(model: nn.Module) -> dict[str, Tensor]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def env_gradients(model: nn.Module, loss_fn: LossFn, xs: Tensor, ys: Tensor) -> dict[str, Tensor]:
    """Gradient of each environment's mean loss, for every trainable parameter.

    Vectorised with ``torch.func`` (``vmap(grad(...))`` over the environment axis): one call, no
    Python loop over environments. Works for any model without batch-coupling layers
    (BatchNorm in training mode would need ``torch.func.replace_all_batch_norm_modules_``).

    Args:
        model: maps ``(B, ...)`` to outputs ``(B, ...)``.
        loss_fn: ``loss_fn(output, target) -> scalar`` mean loss.
        xs: inputs ``(E, B, ...)``; ``ys``: targets ``(E, B, ...)``.

    Returns:
        ``{name: (E, *param.shape)}`` for every parameter with ``requires_grad``.
    """
    validation.check_model("model", model, module=True)
    validation.check_callable("loss_fn", loss_fn)
    check_stacked(xs, ys)
    check_tensor("xs", xs)
    check_tensor("ys", ys)
    validation.check_per_example("model", model)
    check_input_dtype(model, xs, "xs")
    return _env_gradients_and_losses(model, loss_fn, xs, ys)[0]


def _env_gradients_and_losses(
    model: nn.Module, loss_fn: LossFn, xs: Tensor, ys: Tensor
) -> tuple[dict[str, Tensor], Tensor]:
    """:func:`env_gradients` plus each environment's loss ``(E,)`` (from the same forward)."""
    check_stacked(xs, ys)
    params = {name: p.detach() for name, p in _trainable(model).items()}
    frozen = {name: p.detach() for name, p in model.named_parameters() if not p.requires_grad}
    buffers = dict(model.named_buffers())

    def env_loss(p: dict[str, Tensor], x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        loss = loss_fn(functional_call(model, (p, frozen, buffers), (x,)), y)
        return loss, loss.detach()

    return vmap(grad(env_loss, has_aux=True), in_dims=(None, 0, 0))(params, xs, ys)
