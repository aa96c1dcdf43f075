"""Hierarchy wiring: a hierarchical controller from a run directory, oracle subgoals, subgoal strips.

    controller, decode = build_hierarchical("runs/maze-hard", subgoals="generated")
    result = hvp.plan_to_goal("maze-hard", "runs/maze-hard", hierarchical=True)   # the playground entry point

A run holds the world model, RUN/distance (hvp train-distance), RUN/subgoals
(hvp train-subgoals) and RUN/graph_nodes.safetensors (replay-graph nodes, save_graph_nodes);
each can be given elsewhere.
"""
from __future__ import annotations

import heapq
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from hvp.contracts import encode_in_chunks

if TYPE_CHECKING:  # hierarchical_controller runs on a robot computer: no gymnasium, no torch at import
    import gymnasium as gym

    from hvp.agent import Decode
    from hvp.contracts import Distance, SubgoalGenerator
    from hvp.planners.hierarchical import HierarchicalController
    from hvp.planners.mpc import LatentMPC

SUBGOALS_DIR = "subgoals"
GRAPH_NODES_FILE = "graph_nodes.safetensors"
GRAPH_SIZE = 50_000  # most trajectory-graph nodes M (sparse: maze-hard's 300 episodes at stride 3 are 14692)
GRAPH_STRIDE = 3  # frames between nodes of an episode (at 10, exploration hops reach 0.96 of the 2-wide arena)
GRAPH_REACH_STEPS = 1.0  # graph mode: a waypoint is reached within this many LatentSteps of encode(image)


def build_hierarchical(run_dir: str | Path, subgoals: str = "generated", *, count: int = 3, hvf: bool = False,
                       planner: str = "cem", cost: str = "temporal", preset: str = "cpu",
                       distance_dir: str | Path | None = None, subgoals_dir: str | Path | None = None,
                       reachability_dir: str | Path | None = None, seed: int = 0, threads: int | None = None, chain_cost: str | None = None,
                       graph_data: str | Path | None = None, graph_size: int = GRAPH_SIZE,
                       graph_stride: int = GRAPH_STRIDE, graph_config: Mapping[str, Any] | None = None,
                       overrides: Mapping[str, Any] | None = None) -> tuple[Any, Decode]:
    """-> (HierarchicalController, decode) over the world model in `run_dir` (torch; the robot's twin: hvp deploy).

    subgoals: generated (CVAE in `subgoals_dir`, default RUN/subgoals) | graph (nodes are every `graph_stride`-th
    frame of whole episodes of the `graph_data` HDF5, up to `graph_size`, or without it RUN/graph_nodes.safetensors)
    | oracle (images given to reset) | none (flat MPC). `reachability_dir` (hvp refine-reachability): the high
    level scores chains and reached subgoals with it instead of the distance the low level plans with.
    The rest: hierarchical_controller.
    """
    from hvp.agent import DISTANCE_DIR, build_controller
    from hvp.models.subgoal import load_subgoals
    from hvp.models.temporal_distance import load_distance

    low, decode = build_controller(run_dir, planner, cost, preset=preset, seed=seed, device="cpu", threads=threads,
                                   distance_dir=distance_dir)
    # graph mode judges progress with the graph's own latent distance: a run needs no distance/ for it
    distance = None if subgoals == "graph" else load_distance(reachability_dir or distance_dir
                                                              or Path(run_dir) / DISTANCE_DIR)
    generator, nodes = None, None
    if subgoals == "generated":
        generator = load_subgoals(subgoals_dir or Path(run_dir) / SUBGOALS_DIR)
    elif subgoals == "graph":
        if graph_data is not None:
            from hvp.data import load_dataset

            nodes = trajectory_nodes(low.runtime, load_dataset(graph_data), graph_size, graph_stride)
        else:
            nodes, graph_stride = load_graph_nodes(Path(run_dir) / GRAPH_NODES_FILE)
    controller = hierarchical_controller(low, distance, subgoals, generator=generator, graph_nodes=nodes,
                                         graph_stride=graph_stride, count=count, hvf=hvf, preset=preset,
                                         chain_cost=chain_cost, graph_config=graph_config, overrides=overrides)
    return controller, decode


def hierarchical_controller(low: LatentMPC, distance: Distance | None, subgoals: str = "generated", *,
                            generator: SubgoalGenerator | None = None,
                            graph_nodes: Mapping[str, np.ndarray] | None = None, graph_stride: int = GRAPH_STRIDE,
                            count: int = 3, hvf: bool = False, preset: str = "cpu", chain_cost: str | None = None,
                            graph_config: Mapping[str, Any] | None = None,
                            overrides: Mapping[str, Any] | None = None) -> HierarchicalController:
    """A HierarchicalController over built parts, torch or onnxruntime alike (numpy only, no torch here).

    The one place one is assembled: the lab (build_hierarchical) and the robot (hvp deploy --hierarchical) use it.
    subgoals: generated (SubgoalSearch over `generator` and `distance`) | graph (trajectory graph over
    `graph_nodes`, trajectory_nodes' arrays, taken every `graph_stride` frames; `graph_config`: ReplayGraphConfig
    fields; the controller then judges "reached" on encode(image) with the graph's calibrated latent distance, as
    the learned one is local only below ~2 steps on maze-hard, so `distance` may be None) | oracle | none.
    `count` subgoals K (generated).
    hvf: HVF's settings (max chain cost, no replanning, no skipping). `overrides`: HierarchicalConfig fields.
    """
    from hvp.planners.hierarchical import HierarchicalConfig, HierarchicalController
    from hvp.planners.replay_graph import ReplayGraphConfig, trajectory_graph
    from hvp.planners.subgoal_search import SubgoalSearch, SubgoalSearchConfig

    search, reach = None, {}
    if subgoals == "generated":
        if generator is None:
            raise ValueError("generator: subgoals 'generated' needs a subgoal generator (hvp train-subgoals), got None")
        search_config = SubgoalSearchConfig.preset(preset, subgoals=count,
                                                   chain_cost=chain_cost or ("max" if hvf else "sum"))
        search = SubgoalSearch(generator, distance, search_config)
    elif subgoals == "graph":
        if graph_nodes is None:
            raise ValueError("graph_nodes: subgoals 'graph' needs trajectory_nodes' arrays (latents, episodes, "
                             "frames), got None")
        search = trajectory_graph(np.asarray(graph_nodes["latents"], np.float32), graph_nodes["episodes"],
                                  graph_nodes["frames"], graph_stride,
                                  ReplayGraphConfig.preset(preset, **dict(graph_config or {})))
        # the controller's distance becomes the graph's calibrated latent one, comparing encode()s with the nodes'
        # encode()s (the filtered latent's deterministic part carries history that encode()'s does not)
        distance, reach = search.distance, {"reach_steps": GRAPH_REACH_STEPS, "encoded_position": True}
    if distance is None:
        raise ValueError(f"distance: subgoals {subgoals!r} needs a temporal-distance model (hvp train-distance), "
                         "got None")
    config = HierarchicalConfig.preset("hvf" if hvf else preset, mode=subgoals, **{**reach, **dict(overrides or {})})
    return HierarchicalController(low, distance, search, config)


# -- replay-graph nodes -------------------------------------------------------------------------
def trajectory_nodes(runtime: Any, dataset: Any, count: int, stride: int, chunk: int = 256) -> dict[str, np.ndarray]:
    """encode() of every `stride`-th frame (and each episode's last) of a TrajectoryDataset's episodes, whole
    episodes in order until `count` nodes -> {"latents": float32 [M, D], "episodes", "frames": int32 [M]}.
    The goal embedding's space, so nodes compare with goals; whole episodes keep their steps as edges."""
    if count < 2 or stride < 1:
        raise ValueError(f"count, stride: expected >= 2 graph nodes and a stride >= 1, got {count}, {stride}")
    episodes, frames = [], []
    for index, episode in enumerate(dataset.episodes):
        picks = sorted({*range(0, len(episode["image"]), stride), len(episode["image"]) - 1})
        if len(frames) + len(picks) > count:
            break
        episodes += [index] * len(picks)
        frames += picks
    if len(frames) < 2:
        raise ValueError(f"count: {count} nodes hold no whole episode of this dataset at stride {stride}")
    images = np.stack([dataset.episodes[e]["image"][t] for e, t in zip(episodes, frames)])
    latents = encode_in_chunks(runtime, images, chunk)
    return {"latents": latents.astype(np.float32), "episodes": np.int32(episodes), "frames": np.int32(frames)}


def save_graph_nodes(path: str | Path, nodes: Mapping[str, np.ndarray], stride: int, source: str = "") -> Path:
    """Write trajectory_nodes' arrays as safetensors; `stride` and `source` (e.g. the dataset) go in metadata."""
    from safetensors.numpy import save_file

    path = Path(path)
    save_file({key: np.ascontiguousarray(value) for key, value in nodes.items()}, str(path),
              metadata={"stride": str(stride), "source": source})
    return path


def load_graph_nodes(path: str | Path) -> tuple[dict[str, np.ndarray], int]:
    """-> (trajectory_nodes' arrays, stride) written by save_graph_nodes."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"graph nodes: {path} is missing; pass --graph-data DATA.hdf5 or write it with "
                                "hvp.hierarchy.save_graph_nodes(path, trajectory_nodes(runtime, dataset, M, stride))")
    nodes = load_file(str(path))
    if "episodes" not in nodes:
        raise ValueError(f"graph nodes: {path} holds latents without episodes and frames (an older random-frame "
                         "file); rewrite it with save_graph_nodes(path, trajectory_nodes(...), stride)")
    with safe_open(str(path), "np") as handle:
        return nodes, int(handle.metadata()["stride"])


# -- oracle subgoals -----------------------------------------------------------------------------
def maze_waypoints(walls: list[Any], start: np.ndarray, goal: np.ndarray, count: int, clearance: float,
                   cell: float = 0.05, half: float = 1.0) -> np.ndarray:
    """Shortest path on a grid of free cells (8-connected, Dijkstra) -> `count` points float [count, 2] evenly
    spaced along it (excluding start and goal). Walls are hvp.sim.arena.Wall."""
    ticks = np.arange(-half + clearance, half - clearance + 1e-9, cell)
    free = np.array([[all(w.clearance(np.array([x, y])) >= clearance for w in walls) for y in ticks] for x in ticks])
    to_cell = lambda p: tuple(int(np.clip(round((c - ticks[0]) / cell), 0, len(ticks) - 1)) for c in p)  # noqa: E731
    source, target = to_cell(start), to_cell(goal)
    free[source] = free[target] = True
    cost, previous, frontier = {source: 0.0}, {}, [(0.0, source)]
    while frontier:
        here_cost, here = heapq.heappop(frontier)
        if here == target:
            break
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                there = (here[0] + dx, here[1] + dy)
                if (dx or dy) and 0 <= there[0] < len(ticks) and 0 <= there[1] < len(ticks) and free[there]:
                    step = here_cost + float(np.hypot(dx, dy))
                    if step < cost.get(there, np.inf):
                        cost[there], previous[there] = step, here
                        heapq.heappush(frontier, (step, there))
    if target not in cost:
        raise ValueError(f"goal: no free path from {start} to {goal} in this layout")
    path = [target]
    while path[-1] != source:
        path.append(previous[path[-1]])
    points = np.array([[ticks[i], ticks[j]] for i, j in reversed(path)])
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    marks = arc[-1] * np.arange(1, count + 1) / (count + 1)
    return np.stack([np.interp(marks, arc, points[:, axis]) for axis in (0, 1)], 1)


def oracle_subgoal_images(env: gym.Env, count: int) -> np.ndarray:
    """Images uint8 [count, h, w, 3] of the ball at points along the shortest free path of a maze env's current
    episode, rendered by the simulator (evaluation only: it reads the true state). The env's state is restored."""
    import mujoco

    from hvp.sim.maze import BALL_RADIUS, LAYOUTS, MazeEnv

    task = env.unwrapped
    if not isinstance(task, MazeEnv):
        raise ValueError(f"env: oracle subgoals are drawn for maze-* envs, got {type(task).__name__}")
    qpos, qvel = task.data.qpos.copy(), task.data.qvel.copy()
    points = maze_waypoints(LAYOUTS[task.difficulty][task.layout], qpos[:2], np.asarray(task.goal), count,
                            BALL_RADIUS + 0.03)
    images = []
    for point in points:
        task.data.qpos[:2] = point
        mujoco.mj_forward(task.model, task.data)
        images.append(task.render())
    task.data.qpos[:], task.data.qvel[:] = qpos, qvel
    mujoco.mj_forward(task.model, task.data)
    return np.stack(images)


class OracleSubgoals:
    """Controller adapter: resets a mode-"oracle" HierarchicalController with oracle images of `env`'s episode."""

    def __init__(self, controller: Any, env: gym.Env, count: int) -> None:
        self.controller, self.env, self.count = controller, env, count

    def reset(self, goal_image: np.ndarray, seed: int | None = None) -> dict[str, Any]:
        return self.controller.reset(goal_image, seed, subgoal_images=oracle_subgoal_images(self.env, self.count))

    def act(self, state: dict[str, Any], obs: Mapping[str, np.ndarray]) -> tuple[dict[str, Any], np.ndarray]:
        return self.controller.act(state, obs)


# -- outputs -------------------------------------------------------------------------------------
def subgoal_strip(start_image: np.ndarray, goal_image: np.ndarray, final_image: np.ndarray, state: Mapping[str, Any],
                  decode: Decode, path: str | Path) -> Path:
    """A PNG: one row per planned chain, start | decoded subgoals | goal | final frame."""
    from hvp.visualize import contact_sheet

    chains = state.get("chains") or [np.zeros((0, 1), np.float32)]
    rows = [[start_image, *(decode(chain) if len(chain) else []), goal_image, final_image] for chain in chains]
    return contact_sheet(rows, path)
