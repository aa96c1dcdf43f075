"""Replay-graph subgoals: waypoints are real observations, found by shortest paths over dataset frames.

A generative model's subgoals can fall off the data manifold (the maze-hard CVAE's middle subgoals decode to no
ball at all), and a learned temporal distance is only reliable locally (on maze-hard below ~2 steps; SoRB-style
edges drawn with it join the whole arena into cliques). So the graph is SPTM's (Savinov et al. 2018): the nodes
are every `stride`-th frame of dataset episodes (their encode() latents), the edges the episodes' own steps (real,
feasible moves, both ways: the point mass can go back) plus "same place" shortcuts between nodes as close in raw
latent space as consecutive nodes usually are (the raw latent distance is what is accurate locally). Every edge
weighs its LatentSteps length, so paths are short in motion, not in dataset frames (a ball pinned at a wall
spends many frames in place).

The graph is sparse (k-d tree neighbours, scipy Dijkstra from the few nodes the start joins), so whole datasets
fit: maze-hard's 300 episodes at stride 3 are ~15k nodes, a build of seconds and a search of ~0.1 s.

    graph = trajectory_graph(latents, episodes, frames, stride=3)   # [M, D], [M], [M]; no network calls
    chain = graph.search(start, goal)     # start, goal float32 [D] -> GraphChain; empty subgoals: go straight
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from hvp.config import Config, require
from hvp.contracts import check_array

MIN_EDGE_STEPS = 1e-3  # sparse graphs drop explicit zeros: identical latents still get an edge


@dataclasses.dataclass(frozen=True)
class ReplayGraphConfig(Config):
    # quantiles of the latent distances between consecutive nodes of an episode (one stride of real motion):
    shortcut_quantile: float = 0.5  # same-place shortcuts between nodes closer than this quantile
    join_quantile: float = 0.75  # start and goal join nodes closer than this quantile ...
    join_neighbours: int = 8  # ... at most this many, the nearest
    step_quantile: float = 0.75  # this quantile of consecutive pairs counts as `stride` steps (LatentSteps' scale)
    waypoint_spacing: float = 3.0  # steps (LatentSteps) along the path between the waypoints kept (0: every node)

    def validate(self) -> None:
        for name in ("shortcut_quantile", "join_quantile", "step_quantile"):
            require(0 < getattr(self, name) <= 1, "ReplayGraphConfig.{} must be in (0, 1] (got {})", name,
                    getattr(self, name))
        require(self.join_neighbours >= 1, "ReplayGraphConfig.join_neighbours must be >= 1 (got {})",
                self.join_neighbours)
        require(self.waypoint_spacing >= 0, "ReplayGraphConfig.waypoint_spacing must be >= 0 steps (got {})",
                self.waypoint_spacing)


ReplayGraphConfig.PRESETS = {"debug": {}, "cpu": {}, "gpu": {}}


@dataclasses.dataclass(frozen=True)
class GraphChain:
    """A path through the replay graph, in time order; no subgoals means the goal is local or unreachable."""

    subgoals: np.ndarray  # float32 [K, D]: node latents along the path (K = 0: steer at the goal directly)
    nodes: np.ndarray  # int64 [K]: their node indices
    cost: float  # steps start -> goal along the path (inf: the graph does not connect them)
    seconds: float  # wall time of the query


@dataclasses.dataclass(frozen=True)
class LatentSteps:
    """Distance: Euclidean latent distance in "steps", `steps_per_unit` per unit of latent distance. Monotone in the
    squared latent distance, so a threshold on one is a threshold on the other."""

    steps_per_unit: float

    def steps(self, latents_a: np.ndarray, latents_b: np.ndarray) -> np.ndarray:
        """latents_a [N, D], latents_b [N, D] or [1, D] -> float32 [N]."""
        return (self.steps_per_unit * np.linalg.norm(latents_a - latents_b, axis=-1)).astype(np.float32)


class ReplayGraph:
    """Shortest paths over node latents joined by given undirected edges; search(start, goal) -> GraphChain."""

    def __init__(self, nodes: np.ndarray, edges: np.ndarray, distance: LatentSteps, join_steps: float,
                 config: ReplayGraphConfig | None = None) -> None:
        """nodes float32 [M, D]; edges int [E, 2]: node pairs, walkable both ways, each weighing its `distance`;
        start and goal join the nodes within `join_steps` of them."""
        nodes = check_array("nodes", nodes, (None, None), np.float32)
        if len(nodes) < 2:
            raise ValueError(f"nodes: expected at least 2 latents [M, D], got {nodes.shape}")
        edges = np.asarray(edges, np.int64).reshape(-1, 2)
        if len(edges) and (edges.min() < 0 or edges.max() >= len(nodes)):
            raise ValueError(f"edges: expected node indices in [0, {len(nodes)}), got {edges.min()}..{edges.max()}")
        if not isinstance(distance, LatentSteps) or not join_steps > 0:
            raise ValueError(f"distance, join_steps: expected a LatentSteps and a radius > 0 steps, got "
                             f"{type(distance).__name__} and {join_steps}")
        began = time.perf_counter()
        self.config = config or ReplayGraphConfig()
        self.nodes, self.distance, self.join_steps = nodes, distance, float(join_steps)
        edges = edges[edges[:, 0] != edges[:, 1]]
        weights = np.maximum(distance.steps(nodes[edges[:, 0]], nodes[edges[:, 1]]), MIN_EDGE_STEPS)
        # both directions in one matrix; duplicate pairs sum in coo -> csr, so keep each direction once
        both = np.unique(np.concatenate([edges, edges[:, ::-1]]), axis=0, return_index=True)
        pairs, weights = both[0], np.concatenate([weights, weights])[both[1]]
        self.edges = len(pairs)  # directed
        self.matrix = coo_matrix((weights, (pairs[:, 0], pairs[:, 1])), shape=(len(nodes),) * 2).tocsr()
        self.tree = cKDTree(nodes)
        self.build_seconds = time.perf_counter() - began

    def joins(self, latent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """latent float32 [D] -> (node indices int64 [J], their steps float32 [J]): the nearest
        `join_neighbours` nodes within `join_steps` (J = 0: it joins none)."""
        radius = self.join_steps / self.distance.steps_per_unit
        count = min(self.config.join_neighbours, len(self.nodes))
        distances, indices = self.tree.query(latent, count, distance_upper_bound=radius)
        distances, indices = np.atleast_1d(distances), np.atleast_1d(indices)
        found = np.isfinite(distances)
        return indices[found].astype(np.int64), (distances[found] * self.distance.steps_per_unit).astype(np.float32)

    def search(self, start: np.ndarray, goal: np.ndarray, rng: np.random.Generator | None = None) -> GraphChain:
        """start, goal float32 [D] -> the chain of node latents on the shortest path start -> goal.

        `rng` is unused (the search is deterministic); it is taken so the hierarchical controller calls
        every chain source alike.
        """
        began = time.perf_counter()
        dim = self.nodes.shape[1]
        start = check_array("start", start, (dim,), np.float32)
        goal = check_array("goal", goal, (dim,), np.float32)
        direct = float(self.distance.steps(start[None], goal[None])[0])
        entries, entry_steps = self.joins(start)
        exits, exit_steps = self.joins(goal)
        empty = np.zeros((0, dim), np.float32)
        if direct <= self.join_steps or len(entries) == 0 or len(exits) == 0:
            # the goal is local, or start or goal joins no node: the low level steers at the goal
            cost = direct if direct <= self.join_steps else float("inf")
            return GraphChain(empty, np.zeros(0, np.int64), cost, time.perf_counter() - began)
        # from each entry node: lengths [J, M] and predecessors; best (entry, exit) pair by total steps
        lengths, previous = dijkstra(self.matrix, directed=True, indices=entries, return_predecessors=True)
        totals = entry_steps[:, None] + lengths[:, exits] + exit_steps[None, :]
        row, column = np.unravel_index(int(np.argmin(totals)), totals.shape)
        cost = float(totals[row, column])
        if not np.isfinite(cost):
            return GraphChain(empty, np.zeros(0, np.int64), cost, time.perf_counter() - began)
        path = [int(exits[column])]
        while path[-1] != entries[row]:
            path.append(int(previous[row, path[-1]]))
        picks = self.spaced(np.array(path[::-1], np.int64))
        return GraphChain(self.nodes[picks], picks, cost, time.perf_counter() - began)

    def spaced(self, path: np.ndarray) -> np.ndarray:
        """path int64 [P] in time order -> the nodes `waypoint_spacing` steps apart along it, and its last."""
        hops = self.distance.steps(self.nodes[path[1:]], self.nodes[path[:-1]])
        travelled = np.concatenate([[0.0], np.cumsum(hops)])
        spacing = self.config.waypoint_spacing
        keep, mark = ([0] if spacing == 0 else []), 0.0  # the entry node is within a join of the start
        for index, along in enumerate(travelled[1:], start=1):
            if along - mark >= spacing:
                keep.append(index)
                mark = along
        if not keep or keep[-1] != len(path) - 1:
            keep.append(len(path) - 1)
        return path[keep]


def trajectory_graph(latents: np.ndarray, episodes: np.ndarray, frames: np.ndarray, stride: int,
                     config: ReplayGraphConfig | None = None) -> ReplayGraph:
    """SPTM graph. latents float32 [M, D]; episodes, frames int [M]: each node's episode and frame index, nodes of
    one episode in frame order, `stride` frames apart (the last may be nearer).

    Calibration on the consecutive pairs' latent distances: their `step_quantile` is `stride` steps (LatentSteps,
    the graph's Distance: a step is what a brisk exploration step moves, not a stationary one); shortcuts join
    nodes closer than their `shortcut_quantile`; start and goal join nodes closer than their `join_quantile`.
    """
    config = config or ReplayGraphConfig()
    latents = check_array("latents", latents, (None, None), np.float32)
    episodes, frames = np.asarray(episodes), np.asarray(frames)
    if episodes.shape != (len(latents),) or frames.shape != (len(latents),):
        raise ValueError(f"episodes, frames: expected shape ({len(latents)},) like the latents' M, got "
                         f"{episodes.shape} and {frames.shape}")
    if stride < 1:
        raise ValueError(f"stride: expected >= 1 frames between nodes, got {stride}")
    consecutive = np.flatnonzero((episodes[1:] == episodes[:-1]) & (frames[1:] > frames[:-1]))
    if len(consecutive) == 0:
        raise ValueError("episodes: expected at least one episode with 2 nodes in frame order, got none")
    adjacent = np.linalg.norm(latents[consecutive + 1] - latents[consecutive], axis=-1)
    scale, shortcut, join = np.quantile(adjacent, [config.step_quantile, config.shortcut_quantile,
                                                   config.join_quantile])
    if scale <= 0 or shortcut <= 0:
        raise ValueError("latents: consecutive nodes encode identically; take a larger stride")
    distance = LatentSteps(float(stride / scale))
    shortcuts = cKDTree(latents).query_pairs(float(shortcut), output_type="ndarray")
    edges = np.concatenate([np.stack([consecutive, consecutive + 1], 1), shortcuts.reshape(-1, 2)])
    return ReplayGraph(latents, edges, distance, float(join * distance.steps_per_unit), config)
