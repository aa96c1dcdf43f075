"""Deployment wiring: a controller over an exported model, driving a robot through the ZMQ bridge.

    runtime = OnnxRuntime("runs/maze-easy/onnx")
    controller = mpc_controller(runtime, planning_cost("temporal", "runs/maze-easy/onnx"), planner="cem")
    # or subgoals on top: the export's subgoal generator, or graph nodes (RUN/graph_nodes.safetensors)
    controller = onnx_hierarchical(controller, "runs/maze-hard/onnx", subgoals="generated")
    with RobotClient("tcp://127.0.0.1:5555") as robot:
        check_robot(robot.handshake(runtime.model_hash), runtime)
        episodes = run_episodes(robot, controller, episodes=3)

Torch-free (numpy, onnxruntime, pyzmq): this runs on the robot computer. The robot side
owns safety; this side checks that the robot's camera and action space fit the model,
paces itself to the robot's control rate and records what the robot actually applied.
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from hvp.contracts import Controller, ModelRuntime
from hvp.planners.costs import CostTerm
from hvp.planners.mpc import LatentMPC
from hvp.real.client import RobotClient, RobotError, RobotInfo
from hvp.real.protocol import ErrorCode


class DeployError(RuntimeError):
    """The robot and the model do not fit together, or an episode has no goal."""


@dataclasses.dataclass(frozen=True)
class DeployedEpisode:
    """One episode on the robot side, as the planner saw it."""

    seed: int
    steps: int
    success: bool  # the robot's episode_info["success"] at the end (False if the robot reports none)
    done: bool  # the robot ended the episode (its own step limit or task end)
    actions: np.ndarray  # float32 [T, A] the controller chose
    applied: np.ndarray  # float32 [T, A] the robot applied after its safety gate (echoed back)
    act_seconds: tuple[float, ...]  # wall time of each controller.act() (filter + plan)

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the arrays as nested lists."""
        fields = dataclasses.asdict(self)
        return {**fields, "actions": self.actions.tolist(), "applied": self.applied.tolist(),
                "act_seconds": list(self.act_seconds)}


PLANNING_COSTS = ("temporal", "readout", "latent")


def planning_cost(name: str, model_dir: str | os.PathLike, threads: int | None = None) -> CostTerm:
    """"latent": squared latent distance; "temporal": the exported temporal-distance model's predicted steps;
    "readout": the task's state_cost on states the exported readout estimates from the latents.

    Every step of the plan counts: a last-step-only cost leaves the first actions free (docs/planners.md).
    """
    from hvp.planners.costs import LatentDistance, StateCost, TemporalDistance
    from hvp.real.onnx_folder import ModelFolderError, read_manifest

    if name == "latent":
        return LatentDistance(weighting="all")
    if name not in PLANNING_COSTS:
        raise ValueError(f"cost: expected one of {', '.join(PLANNING_COSTS)}, got {name!r}")
    kind, trainer = {"temporal": ("temporal_distance", "hvp train-distance RUN"),
                     "readout": ("state_readout", "hvp train-readout RUN --data DATA.hdf5")}[name]
    if kind not in read_manifest(model_dir)["models"]:
        raise ModelFolderError(f"cost {name!r}: {os.fspath(model_dir)!r} has no {kind} model; train one ({trainer}), "
                               f"export the run again, or use the 'latent' cost")
    if name == "temporal":
        from hvp.real.onnx_distance import OnnxDistance

        return TemporalDistance(OnnxDistance(model_dir, threads=threads), weighting="all")
    from hvp.real.onnx_readout import OnnxReadout
    from hvp.sim import task_state_cost

    readout = OnnxReadout(model_dir, threads=threads)
    return StateCost(readout, task_state_cost(readout.task), weighting="all")


def state_space_planning(runtime: ModelRuntime, readout: Any, dynamics: Any,
                         proprio: bool = False) -> tuple[ModelRuntime, CostTerm]:
    """-> (a StateSpaceRuntime: plans imagined in the task's state that `readout` reads out of `runtime`'s beliefs
    and `dynamics` predicts, the task's state cost on those states). Torch or onnxruntime models alike. With
    `proprio`, the state dims the task's proprioception measures come from it (hvp.sim.task_proprio_state_dims)."""
    from hvp.planners.costs import StateCost
    from hvp.planners.state_space import StateSpaceRuntime
    from hvp.sim import task_proprio_state_dims, task_state_cost

    task = getattr(readout, "task", None)
    space = StateSpaceRuntime(runtime, readout, dynamics, task_proprio_state_dims(task) if proprio else ())
    return space, StateCost(None, task_state_cost(space.task), weighting="all")


def onnx_state_space(runtime: ModelRuntime, model_dir: str | os.PathLike, threads: int | None = None,
                     proprio: bool = False) -> tuple[ModelRuntime, CostTerm]:
    """state_space_planning over the exported state readout and state dynamics of `model_dir`."""
    from hvp.real.onnx_folder import ModelFolderError, read_manifest
    from hvp.real.onnx_readout import OnnxReadout
    from hvp.real.onnx_state_dynamics import OnnxStateDynamics

    missing = sorted({"state_readout", "state_dynamics"} - set(read_manifest(model_dir)["models"]))
    if missing:
        raise ModelFolderError(f"imagine 'state': {os.fspath(model_dir)!r} has no {' and no '.join(missing)} model; "
                               "train them (hvp train-readout RUN --data DATA.hdf5, hvp train-state-dynamics RUN "
                               "--data DATA.hdf5) and export the run again, or imagine 'latent'")
    return state_space_planning(runtime, OnnxReadout(model_dir, threads=threads),
                                OnnxStateDynamics(model_dir, threads=threads), proprio)


def mpc_controller(runtime: ModelRuntime, cost: CostTerm, planner: str = "cem", preset: str = "cpu",
                   horizon: int | None = None, seed: int = 0,
                   optimizer_overrides: Mapping[str, Any] | None = None, gradient_steps: int = 0,
                   proprio: bool = False) -> Controller:
    """A LatentMPC over `runtime` with a registered optimizer (hvp.planners.OPTIMIZERS) and `cost`; with
    `gradient_steps`, each plan is polished by that many Adam steps through the model (torch runtimes only); with
    `proprio`, each obs["state"] goes to the runtime too (a ProprioceptiveRuntime).

    The one place a flat controller is assembled: the lab (hvp.agent), the playground and the robot use it.
    """
    from hvp.planners import make_optimizer
    from hvp.planners.mpc import LatentMPC, MPCConfig

    config = MPCConfig.preset(preset, seed=seed, gradient_steps=gradient_steps, proprio=proprio,
                              **({"horizon": horizon} if horizon else {}))
    optimizer = make_optimizer(planner, preset=preset, **dict(optimizer_overrides or {}))
    return LatentMPC(runtime, optimizer, cost, config)


def onnx_hierarchical(low: LatentMPC, model_dir: str | os.PathLike, subgoals: str = "generated", *,
                      graph_nodes: str | os.PathLike | None = None, count: int = 3, preset: str = "cpu",
                      threads: int | None = None) -> Controller:
    """Subgoals over the flat controller `low` (mpc_controller over the OnnxRuntime of `model_dir`), torch-free.

    generated: the export's subgoal generator and temporal-distance graphs (hvp export of a run with RUN/subgoals
    and RUN/distance), `count` subgoals; graph: trajectory-graph nodes from `graph_nodes`, default the
    RUN/graph_nodes.safetensors of the run that holds the export folder RUN/onnx.
    """
    from hvp.hierarchy import GRAPH_NODES_FILE, hierarchical_controller, load_graph_nodes
    from hvp.real.onnx_distance import OnnxDistance
    from hvp.real.onnx_folder import ModelFolderError, read_manifest
    from hvp.real.onnx_subgoals import OnnxSubgoalGenerator

    if subgoals == "generated":
        missing = sorted({"temporal_distance", "subgoal_cvae"} - set(read_manifest(model_dir)["models"]))
        if missing:
            raise ModelFolderError(f"subgoals 'generated': {os.fspath(model_dir)!r} has no {' and no '.join(missing)} "
                                   "model; train them (hvp train-distance RUN, hvp train-subgoals RUN) and export "
                                   "the run again, or use subgoals 'graph'")
        return hierarchical_controller(low, OnnxDistance(model_dir, threads=threads), "generated",
                                       generator=OnnxSubgoalGenerator(model_dir, threads=threads), count=count,
                                       preset=preset)
    if subgoals == "graph":
        path = Path(graph_nodes or Path(model_dir).parent / GRAPH_NODES_FILE)
        if not path.is_file():
            raise FileNotFoundError(f"graph_nodes: {path} is missing; pass the run's {GRAPH_NODES_FILE} "
                                    "(hvp deploy --graph-nodes) or use subgoals 'generated'")
        nodes, stride = load_graph_nodes(path)
        if nodes["latents"].shape[1:] != (low.runtime.latent_dim,):
            raise ValueError(f"graph_nodes: latents of shape {nodes['latents'].shape} do not fit the model's latent "
                             f"size {low.runtime.latent_dim}; they were encoded by another world model")
        return hierarchical_controller(low, None, "graph", graph_nodes=nodes, graph_stride=stride, preset=preset)
    raise ValueError(f"subgoals: expected 'generated' or 'graph', got {subgoals!r}")


def check_robot(info: RobotInfo, runtime: ModelRuntime) -> None:
    """The robot's camera image and action size must be the model's; raises DeployError naming both."""
    if tuple(info.image_shape) != tuple(runtime.image_shape) or info.action_dim != runtime.action_dim:
        raise DeployError(f"robot {info.name!r}: provides images {list(info.image_shape)} and actions "
                          f"[{info.action_dim}], the model expects images {list(runtime.image_shape)} and actions "
                          f"[{runtime.action_dim}]")


def start_episode(robot: RobotClient, seed: int, goal_image: np.ndarray | None) -> np.ndarray:
    """Reset the robot's episode when it has episodes; -> the goal: `goal_image` if given, else the robot's."""
    try:
        robot_goal = robot.reset(seed=seed)
    except RobotError as err:
        if err.code != ErrorCode.UNSUPPORTED:
            raise
        robot_goal = None  # a robot without episodes: the operator sets the scene up
    goal = goal_image if goal_image is not None else robot_goal
    if goal is None:
        raise DeployError("goal: the robot provides no goal image on reset; pass one (hvp deploy --goal goal.png)")
    return goal


def with_applied_action(state: dict[str, Any], action: np.ndarray) -> dict[str, Any]:
    """`state` with the robot's applied `action` as its last action: the belief filters what the robot did, not
    what was asked. A hierarchical controller's low level holds it; a controller without one is left as is."""
    if "last_action" in state:
        return {**state, "last_action": action}
    if "low" in state:
        return {**state, "low": with_applied_action(state["low"], action)}
    return state


def run_episode(robot: RobotClient, controller: Controller, goal: np.ndarray, seed: int, max_steps: int,
                clock: Callable[[], float] = time.monotonic) -> DeployedEpisode:
    """Arm, loop get_obs -> act -> send_action at the robot's control rate until done or max_steps, disarm."""
    period = 1.0 / robot.robot.control_hz
    state = controller.reset(goal, seed=seed)
    actions, applied, act_seconds, info = [], [], [], {}
    robot.arm()
    try:
        next_tick = clock()
        while len(actions) < max_steps and not info.get("done", False):
            obs = robot.get_obs()
            started = clock()
            state, action = controller.act(state, obs)
            act_seconds.append(clock() - started)
            echo = robot.send_action(action)
            state = with_applied_action(state, echo.action)
            actions.append(action)
            applied.append(echo.action)
            info = echo.info
            next_tick += period
            time.sleep(max(0.0, next_tick - clock()))
    finally:
        robot.disarm()
    action_dim = robot.robot.action_dim
    return DeployedEpisode(seed=seed, steps=len(actions), success=bool(info.get("success", False)),
                           done=bool(info.get("done", False)),
                           actions=np.array(actions, np.float32).reshape(-1, action_dim),
                           applied=np.array(applied, np.float32).reshape(-1, action_dim),
                           act_seconds=tuple(act_seconds))


def run_episodes(robot: RobotClient, controller: Controller, episodes: int = 1, seed: int = 0,
                 goal_image: np.ndarray | None = None, max_steps: int = 200,
                 on_episode: Callable[[DeployedEpisode], None] | None = None) -> list[DeployedEpisode]:
    """`episodes` episodes seeded seed, seed + 1, ...; the robot must have been handshaken."""
    if robot.robot is None:
        raise DeployError("robot: call robot.handshake(model_hash) before running episodes")
    for name, value in (("episodes", episodes), ("max_steps", max_steps)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    results = []
    for index in range(episodes):
        goal = start_episode(robot, seed + index, goal_image)
        results.append(run_episode(robot, controller, goal, seed + index, max_steps))
        if on_episode is not None:
            on_episode(results[-1])
    return results
