"""Temporal AND-mask Adam (Parascandolo et al., ICLR 2021, Algorithm 1): agreement measured over
time, when each step sees a single environment. Re-exported by :mod:`hvnotes.andmask`.
"""

from __future__ import annotations

import math

import torch

from hvnotes import validation
from hvnotes.agreement import _check_tau


class TemporalAndMaskAdam(torch.optim.Optimizer):
    """Adam whose first moment is masked by how consistently each gradient sign held over time.

    Per step, with the gradient ``g`` of the current (single-environment) batch::

        m <- b1 m + (1 - b1) g            v <- b2 v + (1 - b2) g*g
        a <- b3 a + (1 - b3) sign(g)      mask = 1[|a| >= tau]
        theta <- theta - lr * (mask * m_hat) / (sqrt(v_hat) + eps)
        theta <- theta - lr * weight_decay * theta        (decoupled, after the masked step)

    ``m_hat, v_hat`` are Adam's bias-corrected moments (as in ``torch.optim.Adam``, so
    ``tau = 0, weight_decay = 0`` is plain Adam); ``a`` has no bias correction (paper Alg. 1),
    so with ``beta3 = 0.9`` a sign must hold for a few steps before ``|a|`` can reach ``tau``.
    Masking ``m`` (not ``g``) matters: masking ``g`` inside Adam would still move masked
    weights through stale momentum.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        beta3: float = 0.9,
        tau: float = 0.5,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        validation.check_number("lr", lr, positive=True)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        for i, b in enumerate(betas):
            validation.check_number(f"betas[{i}]", b, low=0.0, high=1.0, high_open=True)
        validation.check_number("beta3", beta3, low=0.0, high=1.0, high_open=True)
        _check_tau(tau)
        validation.check_number("eps", eps, positive=True)
        validation.check_number("weight_decay", weight_decay, low=0.0)
        defaults = dict(
            lr=lr, betas=tuple(betas), beta3=beta3, tau=tau, eps=eps, weight_decay=weight_decay
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            beta3, tau, lr, eps = group["beta3"], group["tau"], group["lr"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    state["sign_avg"] = torch.zeros_like(p)
                state["step"] += 1
                m, v, a = state["exp_avg"], state["exp_avg_sq"], state["sign_avg"]
                m.lerp_(g, 1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                a.mul_(beta3).add_(g.sign(), alpha=1 - beta3)
                t = state["step"]
                step_size = lr / (1 - beta1**t)
                denom = (v.sqrt() / math.sqrt(1 - beta2**t)).add_(eps)
                mask = (a.abs() >= tau).to(p.dtype)
                state["kept"] = mask.mean().item()
                p.addcdiv_(m * mask, denom, value=-step_size)
                if group["weight_decay"] != 0:
                    p.mul_(1 - lr * group["weight_decay"])
        return loss
