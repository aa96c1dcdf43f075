"""Extension points: bring your own world model, env, optimizer or subgoal generator.

Each piece is a registry entry whose first product is probed against its contract
(hvp/contracts.py) with tiny inputs, so a newcomer's mistake surfaces at the first
`make_*` call with a message that says what to implement, not deep inside a planner:

    register_model("mine", lambda **kw: MyRuntime(**kw))      # -> make_model("mine")
    register_env("my-task", MyEnv)                              # -> hvp.sim.make("my-task")
    register_optimizer("mine", lambda preset="cpu", **kw: MyOptimizer())
    register_subgoal_generator("mine", lambda latent_dim: MyGenerator(latent_dim))

The check_* functions can also be called directly on any object.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping

import numpy as np

from hvp.contracts import OptimizerResult
from hvp.registry import Registry


class ContractError(TypeError):
    """A user piece does not follow its hvp contract; the message names the method and what to implement."""


# -- world-model runtimes -------------------------------------------------------------------------
RUNTIME_METHODS = {
    "initial_state": "initial_state(batch) -> state: dict of float32 arrays with leading axis B",
    "encode": "encode(images uint8 [B, h, w, 3]) -> latents float32 [B, D]",
    "observe": "observe(state, images uint8 [B, h, w, 3], actions float32 [B, A]) -> new state (same keys)",
    "imagine": "imagine(state, actions float32 [N, H, A]) -> latents float32 [N, H, D]",
    "decode": "decode(latents float32 [..., D]) -> images uint8 [..., h, w, 3]",
    "latent": "latent(state) -> float32 [B, D], comparable with encode()",
}


def _expect(piece: str, call: str, value: Any, shape: tuple[int, ...], dtype: Any, contract: str) -> np.ndarray:
    """`value` returned by `piece.call` must be an array of `shape` and `dtype`; else a ContractError citing `contract`."""
    if not isinstance(value, np.ndarray) or value.shape != shape or value.dtype != np.dtype(dtype):
        got = (f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__)
        raise ContractError(f"{piece}.{call} returned {got}; expected {np.dtype(dtype)} {shape}. Implement {contract}")
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        raise ContractError(f"{piece}.{call} returned NaN or inf; expected finite values from {contract}")
    return value


def _check_state(piece: str, call: str, state: Any, batch: int) -> dict[str, np.ndarray]:
    if not isinstance(state, dict) or not state or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise ContractError(f"{piece}.{call} returned {type(state).__name__}; expected a non-empty dict of numpy "
                            f"arrays. Implement {RUNTIME_METHODS['initial_state']}")
    wrong = {key: value.shape for key, value in state.items() if value.ndim < 1 or value.shape[0] != batch}
    if wrong:
        raise ContractError(f"{piece}.{call}: state arrays {wrong} lack the leading batch axis {batch}")
    return state


def check_runtime(runtime: Any) -> Any:
    """Probe every ModelRuntime method with tiny inputs; return `runtime`, or raise ContractError saying what to fix."""
    piece = type(runtime).__name__
    for attribute in ("image_shape", "action_dim", "latent_dim"):
        if not hasattr(runtime, attribute):
            raise ContractError(f"{piece} has no attribute {attribute!r}; a ModelRuntime declares image_shape "
                                "(h, w, 3), action_dim A and latent_dim D")
    missing = [name for name in RUNTIME_METHODS if not callable(getattr(runtime, name, None))]
    if missing:
        raise ContractError(f"{piece} is missing {', '.join(missing)}; implement "
                            + "; ".join(RUNTIME_METHODS[name] for name in missing))
    image_shape, action_dim, latent_dim = tuple(runtime.image_shape), int(runtime.action_dim), int(runtime.latent_dim)
    if len(image_shape) != 3 or image_shape[2] != 3:
        raise ContractError(f"{piece}.image_shape is {image_shape}; expected (h, w, 3)")
    # probe: a batch of 2 images, 3 action sequences of length 2
    images = np.zeros((2, *image_shape), np.uint8)
    _expect(piece, "encode", runtime.encode(images), (2, latent_dim), np.float32, RUNTIME_METHODS["encode"])
    state = _check_state(piece, "initial_state(2)", runtime.initial_state(2), 2)
    before = {key: value.copy() for key, value in state.items()}
    observed = _check_state(piece, "observe", runtime.observe(state, images, np.zeros((2, action_dim), np.float32)), 2)
    if set(observed) != set(state):
        raise ContractError(f"{piece}.observe returned keys {sorted(observed)}; expected the state's {sorted(state)}")
    _expect(piece, "latent", runtime.latent(observed), (2, latent_dim), np.float32, RUNTIME_METHODS["latent"])
    single = {key: value[:1].copy() for key, value in observed.items()}
    latents = _expect(piece, "imagine", runtime.imagine(single, np.zeros((3, 2, action_dim), np.float32)),
                      (3, 2, latent_dim), np.float32, RUNTIME_METHODS["imagine"] + " (state of batch 1 broadcast to N)")
    _expect(piece, "decode", runtime.decode(latents[0]), (2, *image_shape), np.uint8, RUNTIME_METHODS["decode"])
    for call, given, kept in (("observe", state, before), ("imagine", single, observed)):
        if any(not np.array_equal(kept[key][:len(given[key])], given[key]) for key in given):
            raise ContractError(f"{piece}.{call} changed the state it was given; return new arrays and leave the "
                                "caller's untouched (planners reuse one state for many proposals)")
    return runtime


MODELS: Registry[Any] = Registry("world model")
MODELS.register("rssm", "hvp.models.runtime:load_runtime", info={"needs": "run_dir of hvp train"})


def register_model(name: str, factory: Callable[..., Any] | str, **defaults: Any) -> None:
    """A ModelRuntime factory under `name`: factory(**kwargs) -> runtime, checked by make_model."""
    MODELS.register(name, factory, **defaults)


def make_model(name: str, **kwargs: Any) -> Any:
    """Build a registered world-model runtime and probe it against the ModelRuntime contract."""
    return check_runtime(MODELS.make(name, **kwargs))


# -- environments ---------------------------------------------------------------------------------
def goal_image_of(env: Any, info: Mapping[str, Any]) -> np.ndarray | None:
    """The episode's goal image: info["goal_image"] from reset(), else the env's goal_image attribute."""
    goal = info.get("goal_image")
    return goal if goal is not None else getattr(getattr(env, "unwrapped", env), "goal_image", None)


def check_env(env: Any) -> Any:
    """Reset (seed 0) and step once; return `env`, or raise ContractError saying what the Env contract needs."""
    piece = type(getattr(env, "unwrapped", env)).__name__
    shape = getattr(getattr(env, "action_space", None), "shape", None)
    if shape is None or len(shape) != 1:
        raise ContractError(f"{piece}.action_space is {getattr(env, 'action_space', None)!r}; expected a "
                            "gymnasium Box of shape (A,) with bounds [-1, 1]")
    reset = env.reset(seed=0)
    if not (isinstance(reset, tuple) and len(reset) == 2 and isinstance(reset[0], Mapping)):
        raise ContractError(f"{piece}.reset(seed=...) must return (obs, info) with obs a dict; got {reset!r:.80}")
    obs, info = reset
    if "image" not in obs or "state" not in obs:
        raise ContractError(f"{piece}.reset: obs has keys {sorted(obs)}; expected 'image' (uint8 [h, w, 3]) and "
                            "'state' (float32 [S])")
    image = obs["image"]
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ContractError(f"{piece}: obs['image'] must be uint8 [h, w, 3], got {getattr(image, 'dtype', None)} "
                            f"{getattr(image, 'shape', None)}")
    goal = goal_image_of(env, info)
    if goal is None:
        raise ContractError(f"{piece} has no goal image: return it as info['goal_image'] from reset() or set "
                            "self.goal_image (uint8 [h, w, 3]) there; goal-conditioned planning needs it")
    _expect(piece, "goal image", np.asarray(goal), image.shape, np.uint8, "a goal image shaped like obs['image']")
    step = env.step(np.zeros(shape, np.float32))
    if not (isinstance(step, tuple) and len(step) == 5):
        raise ContractError(f"{piece}.step must return (obs, reward, terminated, truncated, info)")
    for key in ("success", "distance"):
        if key not in step[4]:
            raise ContractError(f"{piece}.step: info lacks {key!r}; evaluation grades episodes by "
                                "info['success'] (bool) and info['distance'] (float, to the goal)")
    return env


def _checked_once(factory: Callable[..., Any], check: Callable[[Any], Any]) -> Callable[..., Any]:
    """Wrap a registry factory so its first product is checked; later ones are trusted."""
    checked = False

    @functools.wraps(factory)
    def build(*args: Any, **kwargs: Any) -> Any:
        nonlocal checked
        product = factory(*args, **kwargs)
        if not checked:
            check(product)
            checked = True
        return product

    return build


def register_env(name: str, factory: Callable[..., Any], info: Mapping[str, Any] | None = None,
                 **defaults: Any) -> None:
    """An env factory under `name` in hvp.sim.ENVS; the first env it makes is probed by check_env (then reset again
    by whoever uses it)."""
    from hvp.sim import ENVS  # hvp wiring: registering into the sim registry

    ENVS.register(name, _checked_once(factory, check_env), info=dict(info or {}), **defaults)


# -- trajectory optimizers --------------------------------------------------------------------------
def check_optimizer(optimizer: Any) -> Any:
    """Run `optimizer` on a tiny quadratic (H=3, A=2, optimum at 0.5); return it or raise ContractError."""
    piece = type(optimizer).__name__
    if not callable(getattr(optimizer, "optimize", None)):
        raise ContractError(f"{piece} has no optimize(); implement optimize(cost_fn, init_mean float32 [H, A], rng, "
                            "carry=None, deadline=None) -> hvp.contracts.OptimizerResult")
    calls = []

    def cost_fn(actions: np.ndarray) -> np.ndarray:
        calls.append(np.shape(actions))
        if np.ndim(actions) != 3 or np.shape(actions)[1:] != (3, 2):
            raise ContractError(f"{piece}.optimize called cost_fn with shape {np.shape(actions)}; call it with the "
                                "whole population float32 [N, H, A] once per iteration")
        return ((actions - 0.5) ** 2).sum(axis=(1, 2))

    result = optimizer.optimize(cost_fn, np.zeros((3, 2), np.float32), np.random.default_rng(0), None, None)
    if not isinstance(result, OptimizerResult):
        raise ContractError(f"{piece}.optimize returned {type(result).__name__}; return "
                            "hvp.contracts.OptimizerResult(plan=float32 [H, A], cost=float, carry={...})")
    plan = _expect(piece, "optimize().plan", result.plan, (3, 2), np.float32, "a plan shaped like init_mean")
    if not calls:
        raise ContractError(f"{piece}.optimize never called cost_fn; evaluate the population through it")
    if plan.min() < -1 or plan.max() > 1:
        raise ContractError(f"{piece}.optimize returned actions outside [-1, 1] ({plan.min():.3g}..{plan.max():.3g})")
    return optimizer


def register_optimizer(name: str, factory: Callable[..., Any]) -> None:
    """An optimizer factory(preset="cpu", **overrides) under `name` in hvp.planners.OPTIMIZERS, probed at first make;
    afterwards every planner option of hvp (build_controller, hvp plan, hvp compare) accepts `name`."""
    from hvp.planners import OPTIMIZERS  # hvp wiring: registering into the planners' registry

    OPTIMIZERS.register(name, _checked_once(factory, check_optimizer))


# -- subgoal generators -----------------------------------------------------------------------------
def check_subgoal_generator(generator: Any, latent_dim: int) -> Any:
    """Propose from random start/goal latents float32 [D] and codes [N=3, K=2, C]; return it or raise ContractError."""
    piece = type(generator).__name__
    contract = "propose(start float32 [D], goal float32 [D], codes float32 [N, K, C]) -> float32 [N, K, D]"
    if not isinstance(getattr(generator, "code_dim", None), int) or not callable(getattr(generator, "propose", None)):
        raise ContractError(f"{piece} needs an int attribute code_dim (C) and {contract}")
    rng = np.random.default_rng(0)
    start, goal = rng.standard_normal((2, latent_dim)).astype(np.float32)
    codes = rng.standard_normal((3, 2, generator.code_dim)).astype(np.float32)
    _expect(piece, "propose", generator.propose(start, goal, codes), (3, 2, latent_dim), np.float32, contract)
    return generator


@dataclasses.dataclass(frozen=True)
class InterpolatingSubgoals:
    """Baseline SubgoalGenerator without learning: subgoal k sits at fraction (k+1)/(K+1) of the straight latent
    path from start to goal, moved by its code times `spread` (C = D), so a search over codes bends the path."""

    latent_dim: int
    spread: float = 0.5  # latent offset per unit code

    @property
    def code_dim(self) -> int:
        return self.latent_dim

    def propose(self, start: np.ndarray, goal: np.ndarray, codes: np.ndarray) -> np.ndarray:
        fractions = np.arange(1, codes.shape[1] + 1, dtype=np.float32) / (codes.shape[1] + 1)
        path = start + fractions[:, None] * (goal - start)  # [K, D]
        return (path[None] + self.spread * codes).astype(np.float32)


SUBGOAL_GENERATORS: Registry[Any] = Registry("subgoal generator")
SUBGOAL_GENERATORS.register("interpolate", InterpolatingSubgoals)


def register_subgoal_generator(name: str, factory: Callable[..., Any]) -> None:
    """A factory(latent_dim, **kwargs) -> SubgoalGenerator under `name`, checked by make_subgoal_generator."""
    SUBGOAL_GENERATORS.register(name, factory)


def make_subgoal_generator(name: str, latent_dim: int, **kwargs: Any) -> Any:
    """Build a registered subgoal generator for latents of size `latent_dim` and probe its contract."""
    return check_subgoal_generator(SUBGOAL_GENERATORS.make(name, latent_dim=latent_dim, **kwargs), latent_dim)
