"""The contracts every hvp piece is written against.

Dimension letters (see README): B batch, T time, H horizon, N population,
K subgoals, C subgoal code size, D latent size, A action size, S state size,
and image height/width.

State is passed in and returned, never hidden in objects: a model state or a
controller state is a small dict of numpy arrays that the caller owns.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

ModelState = dict[str, np.ndarray]
CostFn = Callable[[np.ndarray], np.ndarray]


@runtime_checkable
class ModelRuntime(Protocol):
    """A learned latent dynamics model, numpy in and numpy out.

    Implemented by the torch world model (hvp.models) and by the onnxruntime
    session (hvp.real), so one planner serves the lab and the robot.
    """

    image_shape: tuple[int, int, int]  # (height, width, 3)
    action_dim: int
    latent_dim: int

    def initial_state(self, batch: int) -> ModelState:
        """Belief before any observation, each array with leading axis B."""

    def encode(self, images: np.ndarray) -> np.ndarray:
        """images: uint8 [B, h, w, 3] -> latents: float32 [B, D] (a goal embedding)."""

    def observe(self, state: ModelState, images: np.ndarray, actions: np.ndarray) -> ModelState:
        """Filter one step: state after `actions` float32 [B, A] led to `images` uint8 [B, h, w, 3].

        Returns a new state; the given one is not mutated.
        """

    def imagine(self, state: ModelState, actions: np.ndarray) -> np.ndarray:
        """Roll the prior forward: actions float32 [N, H, A] -> latents float32 [N, H, D].

        `state` has batch 1 (broadcast to N) or N. Never mutates `state`.
        """

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """latents float32 [..., D] -> images uint8 [..., h, w, 3]."""

    def latent(self, state: ModelState) -> np.ndarray:
        """The planning latent of a state: float32 [B, D], comparable with encode()."""


@runtime_checkable
class ProprioceptiveRuntime(ModelRuntime, Protocol):
    """A ModelRuntime that also takes the robot's proprioception (obs["state"]) beside each image."""

    def observe_proprio(self, state: ModelState, proprio: np.ndarray) -> ModelState:
        """The state after proprio float32 [B, P] was measured with the image just observed; a new state."""


Vjp = Callable[[np.ndarray], np.ndarray]  # output gradients -> input gradients (a vector-Jacobian product)


@runtime_checkable
class DifferentiableRuntime(ModelRuntime, Protocol):
    """A ModelRuntime that can also back-propagate through imagine() (the torch model can; onnxruntime cannot)."""

    def imagine_vjp(self, state: ModelState, actions: np.ndarray) -> tuple[np.ndarray, Vjp]:
        """Like imagine(), plus its vector-Jacobian product: -> (latents float32 [N, H, D], vjp), where
        vjp(latent_grads float32 [N, H, D]) -> float32 [N, H, A], the gradient of sum(latents * latent_grads)
        with respect to `actions`."""


@runtime_checkable
class StateReadout(Protocol):
    """An estimate of the task's true low-dimensional state from planning latents (hvp.models.readout)."""

    def states(self, latents: np.ndarray) -> np.ndarray:
        """latents float32 [N, D] -> float32 [N, S]."""


@runtime_checkable
class StateDynamics(Protocol):
    """A model of the task's true low-dimensional state under actions (hvp.models.state_dynamics): with a
    StateReadout it lets a planner imagine in the task's own state instead of the world model's latent."""

    state_dim: int  # S
    action_dim: int  # A
    history: int  # K: executed actions before the next one that the model conditions on

    def rollout(self, states: np.ndarray, recent_actions: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """states float32 [N, S], recent_actions float32 [N, K, A] (newest first), actions float32 [N, H, A]
        -> states float32 [N, H, S] after each action."""


@runtime_checkable
class Distance(Protocol):
    """A cost between latents: predicted control steps (or a proxy) from a to b."""

    def steps(self, latents_a: np.ndarray, latents_b: np.ndarray) -> np.ndarray:
        """latents_a float32 [N, D], latents_b float32 [N, D] or [1, D] -> float32 [N]."""


@runtime_checkable
class DifferentiableDistance(Distance, Protocol):
    """A Distance that can also back-propagate to its first argument (the torch temporal-distance model)."""

    def steps_vjp(self, latents_a: np.ndarray, latents_b: np.ndarray) -> tuple[np.ndarray, Vjp]:
        """Like steps(), plus vjp(step_grads float32 [N]) -> float32 [N, D]: the gradient of
        sum(steps * step_grads) with respect to `latents_a`."""


@dataclass(frozen=True)
class OptimizerResult:
    """What an optimizer returns: the plan to execute and what to carry to the next call."""

    plan: np.ndarray  # float32 [H, A], within the action bounds
    cost: float  # cost of `plan` as the last evaluation estimated it
    carry: Mapping[str, np.ndarray] = field(default_factory=dict)  # e.g. iCEM's elites
    iterations: int = 0


@runtime_checkable
class Optimizer(Protocol):
    """A trajectory optimizer over action sequences [H, A] in [-1, 1].

    `cost_fn(actions float32 [N, H, A]) -> float [N]` is called once per
    iteration for the whole population; NaN or inf counts as +inf.
    """

    def optimize(
        self,
        cost_fn: CostFn,
        init_mean: np.ndarray,
        rng: np.random.Generator,
        carry: Mapping[str, np.ndarray] | None = None,
        deadline: float | None = None,
    ) -> OptimizerResult:
        """init_mean float32 [H, A]; deadline is a time.perf_counter() value or None."""


@runtime_checkable
class SubgoalGenerator(Protocol):
    """Proposes intermediate latents between a current and a goal latent."""

    code_dim: int

    def propose(self, start: np.ndarray, goal: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """start, goal float32 [D] ; codes float32 [N, K, C] -> subgoal latents float32 [N, K, D]."""


@runtime_checkable
class Controller(Protocol):
    """Maps observations to actions; flat and hierarchical controllers share it."""

    def reset(self, goal_image: np.ndarray) -> dict[str, Any]:
        """goal_image uint8 [h, w, 3] -> the controller's initial carried state."""

    def act(self, state: dict[str, Any], obs: Mapping[str, np.ndarray]) -> tuple[dict[str, Any], np.ndarray]:
        """obs {"image": uint8 [h, w, 3], "state": float32 [S]} -> (new state, action float32 [A])."""


@dataclass(frozen=True)
class ActionLimits:
    """Bounds the robot side enforces on every action it applies."""

    low: np.ndarray  # float32 [A]
    high: np.ndarray  # float32 [A]
    max_delta: float  # largest change of any component between consecutive actions


@runtime_checkable
class RobotDriver(Protocol):
    """The robot side: no torch. Observation and actuation are split so latency is explicit."""

    limits: ActionLimits
    metadata: Mapping[str, Any]  # robot name, control_hz, image shape, action dim, ...

    def get_obs(self) -> dict[str, np.ndarray]:
        """{"image": uint8 [h, w, 3], "state": float32 [S]} at the current time."""

    def exec_action(self, action: np.ndarray, t: float) -> np.ndarray:
        """Apply float32 [A] at time t (seconds, monotonic); returns the action actually applied."""

    def hold(self) -> None:
        """Keep the current pose (called when commands stop arriving)."""


def check_array(name: str, value: Any, shape: tuple[int | None, ...], dtype: Any) -> np.ndarray:
    """Validate an array argument and return it; errors name the argument, what was expected and what came."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(value).__name__}")
    if value.dtype != np.dtype(dtype):
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)}, got {value.dtype}")
    if value.ndim != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
        want = tuple("*" if s is None else s for s in shape)
        raise ValueError(f"{name}: expected shape {want}, got {value.shape}")
    return value


def check_state_rollout(dynamics: StateDynamics, states: Any, recent_actions: Any,
                        actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The arguments of StateDynamics.rollout checked against its sizes and each other's N."""
    states = check_array("states", states, (None, dynamics.state_dim), np.float32)
    recent_actions = check_array("recent_actions", recent_actions, (len(states), dynamics.history, dynamics.action_dim),
                                 np.float32)
    actions = check_array("actions", actions, (len(states), None, dynamics.action_dim), np.float32)
    return states, recent_actions, actions


def with_newest_action(recent_actions: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """recent_actions [B, K, A] (newest first), the actions just executed [B, A] -> the K most recent, newest first."""
    return np.concatenate([actions[:, None].astype(np.float32), recent_actions], axis=1)[:, :recent_actions.shape[1]]


def check_latent_pair(latents_a: Any, latents_b: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The arguments of Distance.steps checked: float32 [N, dim] and [N or 1, dim] -> (latents_a, latents_b)."""
    a = check_array("latents_a", latents_a, (None, dim), np.float32)
    b = check_array("latents_b", latents_b, (None, dim), np.float32)
    if len(b) not in (1, len(a)):
        raise ValueError(f"latents_b: expected 1 or {len(a)} rows (like latents_a), got {len(b)}")
    return a, b


def encode_in_chunks(runtime: ModelRuntime, images: np.ndarray, chunk: int = 256) -> np.ndarray:
    """runtime.encode over images uint8 [B, h, w, 3] in chunks of `chunk` (bounds memory) -> float32 [B, D]."""
    return np.concatenate([runtime.encode(images[i:i + chunk]) for i in range(0, len(images), chunk)])


# what both runtimes' observe_proprio raise for a model trained without observe_robot_state
NOT_OBSERVING_ROBOT_STATE = ("observe_proprio: this model was trained without observe_robot_state, so its latent "
                             "has no measured robot state to set (hvp train --proprio-weight W --observe-robot-state)")


def check_proprio(proprio: np.ndarray, batch: int, size: int) -> np.ndarray:
    """The robot's measured state for observe_proprio: any float array [batch, size] of finite values -> float32."""
    if not isinstance(proprio, np.ndarray) or not np.issubdtype(proprio.dtype, np.floating):
        got = proprio.dtype if isinstance(proprio, np.ndarray) else type(proprio).__name__
        raise TypeError(f"proprio: expected a float32 numpy array, got {got}")
    proprio = check_array("proprio", proprio.astype(np.float32, copy=False), (batch, size), np.float32)
    if not np.all(np.isfinite(proprio)):
        raise ValueError("proprio: expected finite values, got NaN or inf")
    return proprio


def observe_frame(runtime: ModelRuntime, state: ModelState, images: np.ndarray, actions: np.ndarray,
                  proprio: np.ndarray | None = None) -> ModelState:
    """runtime.observe, then observe_proprio(proprio float32 [B, S]) where the runtime's model observes its robot
    state (observes_robot_state), as it was trained: the belief after one frame."""
    state = runtime.observe(state, images, actions)
    if not getattr(runtime, "observes_robot_state", False):
        return state
    if proprio is None:
        raise ValueError("proprio: this model observes the robot's state with each image (observe_robot_state), so "
                         "it needs the recorded states ('state') beside the images")
    return runtime.observe_proprio(state, proprio)


def filter_episodes(runtime: ModelRuntime, episodes: Sequence[Mapping[str, np.ndarray]]) -> tuple[ModelState, np.ndarray]:
    """Filter every frame of `episodes` ("image" uint8 [T, h, w, 3], "action" float32 [T, A], action t follows
    frame t; "state" float32 [T, S] too for a runtime that observes_robot_state) with observe_frame, all episodes
    in one batch -> (the belief after each frame, a ModelState with F rows, episode after episode; their (episode,
    frame) indices int64 [F, 2])."""
    if not episodes:
        raise ValueError("episodes: expected at least one episode, got none")
    lengths = [len(e["image"]) for e in episodes]
    longest = max(lengths)

    def padded(key: str) -> np.ndarray:  # short episodes repeat their last frame; the rows past their end are dropped
        return np.stack([np.concatenate([e[key], np.repeat(e[key][-1:], longest - len(e[key]), 0)]) for e in episodes])

    images = padded("image")  # uint8 [E, T, h, w, 3]
    actions = np.stack([np.concatenate([e["action"], np.zeros((longest - len(e["action"]), e["action"].shape[1]),
                                                              np.float32)]) for e in episodes]).astype(np.float32)
    proprio = padded("state").astype(np.float32) if getattr(runtime, "observes_robot_state", False) else None
    state = runtime.initial_state(len(episodes))
    previous = np.zeros_like(actions[:, 0])
    states: list[ModelState] = []
    for t in range(longest):
        state = observe_frame(runtime, state, images[:, t], previous, None if proprio is None else proprio[:, t])
        states.append(state)
        previous = actions[:, t]
    rows = np.array([(e, t) for e, length in enumerate(lengths) for t in range(length)], np.int64)
    return {key: np.stack([s[key] for s in states], 1)[rows[:, 0], rows[:, 1]] for key in states[0]}, rows
