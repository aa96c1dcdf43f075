"""Latent MPC: filter the belief with each image, plan toward a target latent with any
Optimizer (optionally polished by gradient steps through the model), execute
`replan_every` actions, replan warm-started from the shifted plan.

It sees images only (never simulator state or info) and talks to the model through
ModelRuntime, so the same controller runs on the torch model and on onnxruntime.
Everything it remembers is in the state dict it returns:

    belief       ModelState, batch 1         filtered with every image
    goal         float32 [D]                 the goal image's encoding
    target       float32 [D]                 what the cost pulls toward (goal, or a subgoal)
    plan         float32 [H, A]              last optimized plan
    age          int                         actions executed from `plan`
    stale        bool                        plan again at the next act() (new episode or target)
    carry        dict of arrays [..., H, A]  the optimizer's carry (e.g. iCEM elites)
    last_action  float32 [A]                 the action returned by the previous act()
    plan_belief  ModelState, batch 1         the belief `plan` was optimized from (imagined() rolls it out)
    plan_cost    float                       the optimizer's estimate for `plan`
    plan_seconds float                       time spent planning in this act() (0 without a replan)
    seed, step   int                         per-step random streams: default_rng([seed, step])
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Mapping

import numpy as np

from hvp.config import Config, require
from hvp.contracts import DifferentiableRuntime, ModelRuntime, Optimizer, ProprioceptiveRuntime, check_array
from hvp.planners.costs import CostTerm, differentiable
from hvp.planners.gradient import refine_plan


@dataclasses.dataclass(frozen=True)
class MPCConfig(Config):
    horizon: int = 10  # H: planned control steps
    replan_every: int = 1  # actions executed from one plan before planning again (k)
    plan_seconds: float = 0.0  # time budget per plan (optimizer deadline); 0 = no budget
    seed: int = 0  # default seed of reset()
    gradient_steps: int = 0  # Adam steps refining each optimized plan through the model's gradients; 0 = off
    gradient_step_size: float = 0.05  # their step size, in action units
    proprio: bool = False  # hand obs["state"] (proprioception) to the runtime after each image (observe_proprio)

    def validate(self) -> None:
        require(self.horizon >= 1, "horizon must be >= 1 (got {})", self.horizon)
        require(1 <= self.replan_every <= self.horizon, "replan_every must be in [1, horizon={}] (got {})",
                self.horizon, self.replan_every)
        require(self.plan_seconds >= 0, "plan_seconds must be >= 0 (got {}); 0 means no budget", self.plan_seconds)
        require(self.gradient_steps >= 0, "gradient_steps must be >= 0 (got {}); 0 turns refinement off",
                self.gradient_steps)
        require(self.gradient_step_size > 0, "gradient_step_size must be > 0 (got {})", self.gradient_step_size)


MPCConfig.PRESETS = {"debug": dict(horizon=5), "cpu": dict(horizon=10), "gpu": dict(horizon=12)}


def shift_plan(plan: np.ndarray, steps: int) -> np.ndarray:
    """plans float32 [..., H, A] -> the same advanced by `steps` executed actions.

    The freed tail repeats the last action: a motion under way is the best guess
    for what comes after it, and the optimizer corrects the rest.
    """
    if steps <= 0:
        return plan
    horizon = plan.shape[-2]
    tail = np.repeat(plan[..., -1:, :], min(steps, horizon), axis=-2)
    return np.concatenate([plan[..., min(steps, horizon):, :], tail], axis=-2)


def shift_carry(carry: Mapping[str, np.ndarray], steps: int) -> dict[str, np.ndarray]:
    """Advance every carried plan array float32 [..., H, A] by `steps` executed actions."""
    return {name: shift_plan(value, steps) for name, value in carry.items()}


class LatentMPC:
    """Controller: reset(goal_image) -> state; act(state, obs) -> (state, action float32 [A])."""

    def __init__(self, runtime: ModelRuntime, optimizer: Optimizer, cost: CostTerm,
                 config: MPCConfig | None = None) -> None:
        for name, value, kind in (("runtime", runtime, ModelRuntime), ("optimizer", optimizer, Optimizer)):
            if not isinstance(value, kind):
                raise TypeError(f"{name}: expected an hvp.contracts.{kind.__name__}, got {type(value).__name__}")
        if not callable(cost):
            raise TypeError(f"cost: expected a cost term (latents, actions, target) -> [N], got {type(cost).__name__}")
        self.runtime, self.optimizer, self.cost = runtime, optimizer, cost
        self.config = config or MPCConfig()
        if self.config.proprio and not isinstance(runtime, ProprioceptiveRuntime):
            raise TypeError(f"proprio: the runtime ({type(runtime).__name__}) has no observe_proprio(); use one that "
                            "takes proprioception (hvp.planners.state_space.StateSpaceRuntime), or set proprio=False")
        if getattr(runtime, "observes_robot_state", False) and not self.config.proprio:
            raise ValueError("proprio: the runtime's world model observes the robot's state with each image "
                             "(observe_robot_state), so act() must hand it obs['state']: set proprio=True "
                             "(hvp plan --proprio)")
        if self.config.gradient_steps:
            if not isinstance(runtime, DifferentiableRuntime):
                raise TypeError(f"gradient_steps: the runtime ({type(runtime).__name__}) has no imagine_vjp(); "
                                "gradient refinement needs the torch model, or set gradient_steps=0")
            if not differentiable(cost):
                raise TypeError("gradient_steps: the cost has a term without gradient() (pixel, or a temporal "
                                "distance that is not the torch model); use the latent or temporal cost in torch")

    def reset(self, goal_image: np.ndarray, seed: int | None = None) -> dict[str, Any]:
        """goal_image uint8 [h, w, 3] -> initial state; the goal is encoded once, here."""
        goal = self.runtime.encode(self._check_image("goal_image", goal_image)[None])[0].astype(np.float32)
        horizon, action_dim = self.config.horizon, self.runtime.action_dim
        return {
            "belief": self.runtime.initial_state(1), "goal": goal, "target": goal,
            "plan": np.zeros((horizon, action_dim), np.float32), "age": 0, "stale": True, "carry": {},
            "last_action": np.zeros(action_dim, np.float32),
            "plan_belief": self.runtime.initial_state(1),
            "plan_cost": float("inf"), "plan_seconds": 0.0,
            "seed": self.config.seed if seed is None else int(seed), "step": 0,
        }

    def set_target(self, state: dict[str, Any], latent: np.ndarray, replan: bool = True) -> dict[str, Any]:
        """Steer toward `latent` float32 [D] (a subgoal) instead of the goal; replan at the next act() if asked."""
        check_array("latent", latent, (self.runtime.latent_dim,), np.float32)
        return {**state, "target": latent.copy(), "stale": replan or state["stale"]}

    def act(self, state: dict[str, Any], obs: Mapping[str, np.ndarray]) -> tuple[dict[str, Any], np.ndarray]:
        """obs {"image": uint8 [h, w, 3], ...} -> (new state, action float32 [A] in [-1, 1]). `state` is not mutated."""
        if "image" not in obs:
            raise KeyError(f"obs: expected an 'image' entry, got keys {sorted(obs)}")
        image = self._check_image('obs["image"]', obs["image"])
        # filter: the image is the outcome of the action returned last time
        belief = self.runtime.observe(state["belief"], image[None], state["last_action"][None])
        if self.config.proprio:
            if "state" not in obs:
                raise KeyError(f"obs: expected a 'state' entry (proprioception; proprio=True), got keys {sorted(obs)}")
            belief = self.runtime.observe_proprio(belief, np.asarray(obs["state"], np.float32)[None])
        state = {**state, "belief": belief, "plan_seconds": 0.0}
        if state["stale"] or state["age"] >= self.config.replan_every:
            state = self.replan(state)
        action = state["plan"][state["age"]].copy()
        return {**state, "age": state["age"] + 1, "last_action": action, "step": state["step"] + 1}, action

    def replan(self, state: dict[str, Any]) -> dict[str, Any]:
        """Optimize a new plan from state["belief"] toward state["target"], warm-started from the shifted old one."""
        started = time.perf_counter()
        belief, target = state["belief"], state["target"]

        def cost_fn(actions: np.ndarray) -> np.ndarray:  # actions float32 [N, H, A]: one imagine() per call
            return self.cost(self.runtime.imagine(belief, actions), actions, target)

        deadline = started + self.config.plan_seconds if self.config.plan_seconds > 0 else None
        result = self.optimizer.optimize(
            cost_fn, shift_plan(state["plan"], state["age"]), np.random.default_rng([state["seed"], state["step"]]),
            shift_carry(state["carry"], state["age"]), deadline)
        plan, plan_cost = np.clip(result.plan, -1.0, 1.0).astype(np.float32), float(result.cost)
        if self.config.gradient_steps:
            plan, plan_cost = refine_plan(plan, belief, self.runtime, self.cost, target, self.config.gradient_steps,
                                          self.config.gradient_step_size)
        return {**state, "plan": plan, "age": 0, "stale": False, "carry": dict(result.carry), "plan_belief": belief,
                "plan_cost": plan_cost, "plan_seconds": time.perf_counter() - started}

    def imagined(self, state: dict[str, Any]) -> np.ndarray:
        """float32 [H, D]: the latents the model predicts for state["plan"] from the belief it was planned from.

        For videos; computed on request rather than in replan(), so a control step does not pay for it."""
        return self.runtime.imagine(state["plan_belief"], state["plan"][None])[0].astype(np.float32)

    def _check_image(self, name: str, image: np.ndarray) -> np.ndarray:
        return check_array(name, image, tuple(self.runtime.image_shape), np.uint8)
