"""Checks of models: the callable contract, the logits it returns, and its train/eval mode.

Part of :mod:`hvnotes.validation` (which re-exports every name here). Functions that only need a
model's outputs accept any callable (Captum's ``forward_func`` convention); those that train it
or read its parameters need an ``nn.Module``. :func:`preserved_mode` and :func:`evaluating`
restore a model's mode also when the block raises. Imports only torch and the standard library.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

__all__ = [
    "check_finite_parameters", "check_input_dtype", "check_logits", "check_model",
    "check_optimizer", "check_per_example", "evaluating", "preserved_mode",
]  # fmt: skip


def check_model(name: str, model, *, module: bool = False):
    """``model``: a callable mapping inputs to outputs; an ``nn.Module`` when ``module``.

    Functions that only need a model's outputs accept any callable (Captum's ``forward_func``
    convention); functions that train it, or read its parameters, need a module.
    """
    if module and not isinstance(model, nn.Module):
        raise TypeError(
            f"{name} must be a torch.nn.Module (its parameters are trained or read), got "
            f"{type(model).__name__}"
        )
    if not callable(model):
        raise TypeError(
            f"{name} must be a callable that maps inputs to logits, got {type(model).__name__}"
        )
    return model


def check_logits(name: str, out, n: int | None = None) -> Tensor:
    """A model's output as logits: a floating-point Tensor ``(N, C)``, finite, ``n`` rows."""
    if not isinstance(out, Tensor):
        raise TypeError(f"{name} must return a Tensor of logits (N, C), got {type(out).__name__}")
    if out.ndim != 2:
        raise ValueError(
            f"{name} must return logits of shape (N, C), one row per input, got shape "
            f"{tuple(out.shape)}"
            + (" (a single output per row? give it C >= 2 outputs)" if out.ndim == 1 else "")
        )
    if n is not None and len(out) != n:
        raise ValueError(f"{name} returned {len(out)} rows of logits for {n} inputs")
    if not out.is_floating_point():
        raise TypeError(f"{name} must return floating-point logits, got {out.dtype}")
    if not torch.isfinite(out).all():
        raise ValueError(
            f"{name} returned NaN or inf logits: are its weights and the inputs finite?"
        )
    return out


def check_per_example(name: str, model) -> None:
    """Refuse a model whose examples interact: a BatchNorm layer in training mode.

    Per-example quantities (per-environment gradients, input gradients) assume that one row's
    output does not depend on the other rows of the batch; BatchNorm in training mode normalises
    with the batch's statistics, so it does. Put the model in eval mode, or use GroupNorm.
    """
    if not isinstance(model, nn.Module):
        return
    for sub_name, sub in model.named_modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm) and sub.training:
            raise ValueError(
                f"{name} has a BatchNorm layer in training mode ({sub_name or 'the model'}): its "
                "examples interact, so per-example gradients are not defined; call "
                f"{name}.eval() first, or use GroupNorm"
            )


def check_finite_parameters(name: str, model) -> None:
    """Refuse a module with a NaN or inf parameter (a plain callable passes)."""
    if not isinstance(model, nn.Module):
        return
    for p_name, p in model.named_parameters():
        if p.is_floating_point() and not torch.isfinite(p).all():
            raise ValueError(f"{name}'s parameter {p_name} holds NaN or inf values")


def check_input_dtype(model, x: Tensor, name: str = "x") -> None:
    """A clear error when ``x`` cannot go through ``model``: float64 into float32 weights, or
    another device. A plain callable, or a module without parameters, passes."""
    if not isinstance(model, nn.Module):
        return
    param = next(iter(model.parameters()), None)
    if param is None:
        return
    if x.is_floating_point() and x.dtype != param.dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the model's parameters are {param.dtype}: "
            f"convert one of them ({name}.to({param.dtype}) or model.to({x.dtype}))"
        )
    if x.device != param.device:
        raise ValueError(
            f"{name} is on {x.device} but the model is on {param.device}: move one of them"
        )


def check_optimizer(optimizer, model: nn.Module) -> None:
    """``optimizer``: a ``torch.optim.Optimizer`` that updates ``model``'s parameters."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    mine = {id(p) for p in model.parameters() if p.requires_grad}
    theirs = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if mine and not mine & theirs:
        raise ValueError("optimizer does not update any of the model's parameters")


@contextlib.contextmanager
def preserved_mode(model) -> Iterator:
    """Save the train/eval mode of ``model`` and of every submodule; restore it after the block,
    also when the block raises. A plain callable passes through."""
    if not isinstance(model, nn.Module):
        yield model
        return
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def evaluating(model) -> Iterator:
    """Put ``model`` in eval mode for the block and restore its mode after, even on an error.

    A plain callable (no ``.train``/``.eval``) passes through unchanged.
    """
    with preserved_mode(model):
        if isinstance(model, nn.Module):
            model.eval()
        yield model
