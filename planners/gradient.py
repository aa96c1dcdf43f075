"""Gradient plan refinement: a few Adam steps on the optimizer's plan through the model's own gradients.

Sampling optimizers (CEM, MPPI, ...) find the basin; gradients polish within it, where a
population of 128 resolves a 10 x 2 plan only coarsely. Needs a DifferentiableRuntime
(the torch model; onnxruntime has no gradients) and a cost with gradient() (every term
in planners/costs.py but PixelMSE). Numpy in and out, like every planner.

    plan, cost = refine_plan(plan, belief, runtime, cost, target, steps=5, step_size=0.05)
"""
from __future__ import annotations

import numpy as np

from hvp.contracts import DifferentiableRuntime, ModelState
from hvp.planners.costs import CostTerm

BETAS = (0.9, 0.999)  # Adam's moment decays


def refine_plan(plan: np.ndarray, belief: ModelState, runtime: DifferentiableRuntime, cost: CostTerm,
                target: np.ndarray, steps: int, step_size: float) -> tuple[np.ndarray, float]:
    """plan float32 [H, A] -> (the cheapest plan seen in `steps` Adam steps within [-1, 1], its cost).

    The given plan is scored first, so the result is never dearer than it; a non-finite cost stops early.
    """
    actions = plan[None].astype(np.float32)
    first_moment, second_moment = np.zeros_like(actions), np.zeros_like(actions)
    best, best_cost = plan.astype(np.float32), np.inf
    for step in range(steps + 1):
        latents, vjp = runtime.imagine_vjp(belief, actions)
        value = float(cost(latents, actions, target)[0])
        if not np.isfinite(value):
            break
        if value < best_cost:
            best, best_cost = actions[0].copy(), value
        if step == steps:
            break
        latent_grads, action_grads = cost.gradient(latents, actions, target)
        gradient = vjp(latent_grads) + action_grads
        # Adam, bias-corrected: step sizes in action units whatever the cost's scale
        first_moment = BETAS[0] * first_moment + (1 - BETAS[0]) * gradient
        second_moment = BETAS[1] * second_moment + (1 - BETAS[1]) * gradient ** 2
        update = (first_moment / (1 - BETAS[0] ** (step + 1))) / (
            np.sqrt(second_moment / (1 - BETAS[1] ** (step + 1))) + 1e-8)
        actions = np.clip(actions - step_size * update, -1.0, 1.0).astype(np.float32)
    return best, best_cost
