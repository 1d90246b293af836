"""Adam for the atlas fits, without torch.optim.

Building the first `torch.optim` optimiser in a process imports torch._dynamo, which costs
seconds, once per process: every CLI run, batch worker and ComfyUI start paid it before the
first fit. This is the same update as torch's single-tensor Adam (no weight decay, no amsgrad;
the path torch takes for CPU tensors), so fits are unchanged.
"""

from __future__ import annotations

import math

import torch


class Adam:
    """Adam over parameter groups: [{"params": [...], "lr": float}, ...]."""

    def __init__(self, groups: list[dict], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.groups = [{"params": list(g["params"]), "lr": float(g["lr"])} for g in groups]
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.steps = 0
        self._moments = {id(p): (torch.zeros_like(p), torch.zeros_like(p))
                         for g in self.groups for p in g["params"]}

    def zero_grad(self) -> None:
        for group in self.groups:
            for p in group["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        correction1 = 1 - self.beta1 ** self.steps
        correction2_sqrt = math.sqrt(1 - self.beta2 ** self.steps)
        for group in self.groups:
            step_size = group["lr"] / correction1
            for p in group["params"]:
                if p.grad is None:
                    continue
                mean, square = self._moments[id(p)]
                mean.lerp_(p.grad, 1 - self.beta1)
                square.mul_(self.beta2).addcmul_(p.grad, p.grad.conj(), value=1 - self.beta2)
                denom = (square.sqrt() / correction2_sqrt).add_(self.eps)
                p.addcdiv_(mean, denom, value=-step_size)
