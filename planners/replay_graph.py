"""Replay-graph subgoals (SoRB, Eysenbach et al. 2019): waypoints are real observations, found by graph search.

A generative model's subgoals can fall off the data manifold (the maze-hard CVAE's middle
subgoals decode to no ball at all), and a learned distance is only reliable locally (it
cuts through walls when asked about far pairs). So: take the latents of M frames of the
training data as nodes, draw an edge i -> j only where the distance predicts at most
`max_edge` steps (where it is trustworthy), weight it by that prediction, and precompute
all shortest paths once. Per query, the start and the goal join the graph through their
own local edges; the chain is the path's node latents, every observation one the robot
has seen. Numpy only, like every planner: the Distance contract hides the network.

    graph = ReplayGraph(node_latents, distance, ReplayGraphConfig(max_edge=8))   # [M, D]; M^2 distances, M^3 paths
    chain = graph.search(start, goal)     # start, goal float32 [D] -> GraphChain; empty subgoals: go straight

Trajectory graph (SPTM, Savinov et al. 2018), for when the learned distance is local only below ~1 step
(maze-hard's): the nodes are every `stride`-th frame of dataset episodes, the edges the episodes' own
steps (real, feasible moves, both ways) plus "same place" shortcuts between nodes as close in raw
latent space as consecutive nodes usually are (the latent distance is accurate locally). LatentSteps,
calibrated on the consecutive pairs, joins start and goal and tells the controller when a waypoint is reached.

    graph = trajectory_graph(latents, episodes, frames, stride=10)   # [M, D], [M], [M]; no network calls
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from hvp.config import Config, require
from hvp.contracts import Distance, check_array


@dataclasses.dataclass(frozen=True)
class ReplayGraphConfig(Config):
    max_edge: float = 8.0  # steps: edges only where the learned distance is local (and so reliable)
    waypoint_stride: int = 1  # keep every k-th node of the path as a waypoint, counted back from the last
    pair_batch: int = 65536  # latent pairs per Distance call while building the edges (bounds memory)

    def validate(self) -> None:
        require(self.max_edge > 0, "ReplayGraphConfig.max_edge must be > 0 steps (got {})", self.max_edge)
        for name in ("waypoint_stride", "pair_batch"):
            require(getattr(self, name) >= 1, "ReplayGraphConfig.{} must be >= 1 (got {})", name,
                    getattr(self, name))


ReplayGraphConfig.PRESETS = {"debug": dict(pair_batch=4096), "cpu": {}, "gpu": dict(pair_batch=1 << 20)}


@dataclasses.dataclass(frozen=True)
class GraphChain:
    """A path through the replay graph, in time order; no subgoals means the goal is local or unreachable."""

    subgoals: np.ndarray  # float32 [K, D]: node latents along the path (K = 0: steer at the goal directly)
    nodes: np.ndarray  # int64 [K]: their node indices
    cost: float  # predicted steps start -> goal along the path (inf: the graph does not connect them)
    seconds: float  # wall time of the query


def pairwise_steps(distance: Distance, latents: np.ndarray, pair_batch: int) -> np.ndarray:
    """latents float32 [M, D] -> predicted steps float32 [M, M] from row i to column j, in row blocks of
    about `pair_batch` pairs (the Distance contract takes pairs, so each block repeats its rows)."""
    count = len(latents)
    rows_per_call = max(1, pair_batch // count)
    blocks = []
    for first in range(0, count, rows_per_call):
        rows = latents[first:first + rows_per_call]
        starts = np.repeat(rows, count, 0)
        ends = np.tile(latents, (len(rows), 1))
        blocks.append(np.asarray(distance.steps(starts, ends), np.float32).reshape(len(rows), count))
    return np.concatenate(blocks)


def shortest_paths(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Floyd-Warshall. weights float32 [M, M] (inf: no edge) -> (path lengths float32 [M, M],
    next hop int64 [M, M]: the node after i on a shortest path i -> j, -1 when j is unreachable from i)."""
    lengths = weights.astype(np.float32).copy()
    np.fill_diagonal(lengths, 0.0)
    count = len(lengths)
    next_hop = np.where(np.isfinite(lengths), np.arange(count)[None, :], -1)
    for via in range(count):
        through = lengths[:, via, None] + lengths[None, via, :]
        shorter = through < lengths
        # one vectorized [M, M] pass per intermediate node: O(M^3) work, but no Python loop over pairs
        lengths = np.where(shorter, through, lengths)
        next_hop = np.where(shorter, next_hop[:, via, None], next_hop)
    return lengths, next_hop


class ReplayGraph:
    """Shortest paths over replay latents under a Distance; search(start, goal) -> GraphChain."""

    def __init__(self, nodes: np.ndarray, distance: Distance, config: ReplayGraphConfig | None = None,
                 weights: np.ndarray | None = None) -> None:
        """`weights` float32 [M, M] (inf: no edge): edges given by the caller (trajectory_graph); None: edges
        where `distance` predicts at most max_edge steps. `distance` joins start and goal either way."""
        if not isinstance(distance, Distance):
            raise TypeError(f"distance: expected an hvp.contracts.Distance, got {type(distance).__name__}")
        nodes = check_array("nodes", nodes, (None, None), np.float32)
        if len(nodes) < 2:
            raise ValueError(f"nodes: expected at least 2 latents [M, D], got {nodes.shape}")
        self.config = config or ReplayGraphConfig()
        self.nodes, self.distance = nodes, distance
        began = time.perf_counter()
        if weights is None:
            steps = pairwise_steps(distance, nodes, self.config.pair_batch)
            weights = np.where(steps <= self.config.max_edge, steps, np.inf)
        weights = check_array("weights", weights, (len(nodes), len(nodes)), np.float32)
        self.edge_seconds = time.perf_counter() - began
        self.edges = int(np.sum(np.isfinite(weights)) - np.sum(np.isfinite(np.diag(weights))))  # directed, no loops
        self.lengths, self.next_hop = shortest_paths(weights)
        self.path_seconds = time.perf_counter() - began - self.edge_seconds

    def search(self, start: np.ndarray, goal: np.ndarray, rng: np.random.Generator | None = None) -> GraphChain:
        """start, goal float32 [D] -> the chain of node latents on the shortest path start -> goal.

        `rng` is unused (the search is deterministic); it is taken so the hierarchical controller calls
        every chain source alike.
        """
        began = time.perf_counter()
        dim = self.nodes.shape[1]
        start = check_array("start", start, (dim,), np.float32)
        goal = check_array("goal", goal, (dim,), np.float32)
        count, limit = len(self.nodes), self.config.max_edge
        direct = float(self.distance.steps(start[None], goal[None])[0])
        entry = np.asarray(self.distance.steps(np.repeat(start[None], count, 0), self.nodes), np.float32)
        exit_ = np.asarray(self.distance.steps(self.nodes, goal[None]), np.float32)
        entry = np.where(entry <= limit, entry, np.inf)
        exit_ = np.where(exit_ <= limit, exit_, np.inf)
        # best first and last node: [M, M] sums, a few ms at M = 1000
        totals = entry[:, None] + self.lengths + exit_[None, :]
        first, last = np.unravel_index(int(np.argmin(totals)), totals.shape)
        cost = float(totals[first, last])
        if direct <= limit or not np.isfinite(cost):
            # the goal is local (the distance is trusted there), or no path: the low level steers at the goal
            empty = np.zeros((0, dim), np.float32)
            return GraphChain(empty, np.zeros(0, np.int64), direct if direct <= limit else float("inf"),
                              time.perf_counter() - began)
        path = [int(first)]
        while path[-1] != last:
            path.append(int(self.next_hop[path[-1], last]))
        picks = np.array(path[::-1][::self.config.waypoint_stride][::-1], np.int64)
        return GraphChain(self.nodes[picks], picks, cost, time.perf_counter() - began)


# -- trajectory graph (SPTM) ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LatentSteps:
    """Distance: Euclidean latent distance in "steps", scaled so a typical consecutive node pair is `stride`
    steps apart. Monotone in the squared latent distance, so a threshold on one is a threshold on the other."""

    steps_per_unit: float  # steps per unit of Euclidean latent distance

    def steps(self, latents_a: np.ndarray, latents_b: np.ndarray) -> np.ndarray:
        """latents_a [N, D], latents_b [N, D] or [1, D] -> float32 [N]."""
        return (self.steps_per_unit * np.linalg.norm(latents_a - latents_b, axis=-1)).astype(np.float32)


def latent_distances(latents: np.ndarray) -> np.ndarray:
    """latents float32 [M, D] -> Euclidean distances float32 [M, M] (one matrix product; no network)."""
    squares = np.sum(latents.astype(np.float64) ** 2, -1)
    squared = squares[:, None] + squares[None, :] - 2.0 * latents.astype(np.float64) @ latents.T.astype(np.float64)
    return np.sqrt(np.maximum(squared, 0.0)).astype(np.float32)  # clip rounding below 0


def trajectory_graph(latents: np.ndarray, episodes: np.ndarray, frames: np.ndarray, stride: int,
                     shortcut_quantile: float = 0.5, join_quantile: float = 0.5,
                     config: ReplayGraphConfig | None = None) -> ReplayGraph:
    """SPTM graph. latents float32 [M, D]; episodes, frames int [M]: each node's episode and frame index, nodes of
    one episode in frame order, `stride` frames apart (the last may be nearer).

    Edges: consecutive nodes of an episode, both ways (the point mass can go back), weighted by the frames between
    them; shortcuts between other nodes whose latent distance is below the `shortcut_quantile` of the consecutive
    pairs' (as close as one stride of real motion usually is), weighted by LatentSteps. The graph's Distance is
    LatentSteps and its max_edge the `join_quantile` of the same pairs: start and goal join by the same rule, a
    looser quantile where few episodes pass near them.
    """
    latents = check_array("latents", latents, (None, None), np.float32)
    episodes, frames = np.asarray(episodes), np.asarray(frames)
    if episodes.shape != (len(latents),) or frames.shape != (len(latents),):
        raise ValueError(f"episodes, frames: expected shape ({len(latents)},) like the latents' M, got "
                         f"{episodes.shape} and {frames.shape}")
    if stride < 1 or not (0 < shortcut_quantile <= 1 and 0 < join_quantile <= 1):
        raise ValueError(f"stride, shortcut_quantile, join_quantile: expected >= 1 and two in (0, 1], got {stride}, "
                         f"{shortcut_quantile}, {join_quantile}")
    consecutive = np.flatnonzero((episodes[1:] == episodes[:-1]) & (frames[1:] > frames[:-1]))
    if len(consecutive) == 0:
        raise ValueError("episodes: expected at least one episode with 2 nodes in frame order, got none")
    # calibrate: the median consecutive pair is `stride` steps; shortcuts as close as the chosen quantile
    distances = latent_distances(latents)
    adjacent = distances[consecutive, consecutive + 1]
    typical, threshold, join = np.quantile(adjacent, [0.5, shortcut_quantile, join_quantile])
    if typical <= 0 or threshold <= 0:
        raise ValueError("latents: consecutive nodes encode identically; take a larger stride")
    distance = LatentSteps(float(stride / typical))
    steps = distances * np.float32(distance.steps_per_unit)
    weights = np.where(distances < threshold, steps, np.inf).astype(np.float32)
    gaps = (frames[consecutive + 1] - frames[consecutive]).astype(np.float32)
    weights[consecutive, consecutive + 1] = weights[consecutive + 1, consecutive] = gaps
    config = dataclasses.replace(config or ReplayGraphConfig(), max_edge=float(join * distance.steps_per_unit))
    return ReplayGraph(latents, distance, config, weights)
