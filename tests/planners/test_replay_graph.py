"""Replay-graph search on points of a 2-D grid with a wall, the Euclidean distance posing as the learned one
(it cuts straight through the wall, like a learned distance asked about far pairs; edges stay local);
trajectory graphs on two straight 'episodes' in the plane, latents = positions."""
from __future__ import annotations

import numpy as np
import pytest
from test_hierarchical import GOAL, START, PositionDistance, StraightLineGenerator, closed_loop, low_level

from hvp.config import ConfigError
from hvp.hierarchy import load_graph_nodes, save_graph_nodes, trajectory_nodes
from hvp.planners.hierarchical import HierarchicalConfig, HierarchicalController
from hvp.planners.replay_graph import (ReplayGraph, ReplayGraphConfig, pairwise_steps, shortest_paths,
                                       trajectory_graph)
from hvp.planners.subgoal_search import SubgoalSearch, SubgoalSearchConfig


class EuclideanDistance:
    """Distance: Euclidean distance of the latents, one step per unit."""

    def steps(self, latents_a: np.ndarray, latents_b: np.ndarray) -> np.ndarray:
        return np.linalg.norm(latents_a - latents_b, axis=-1).astype(np.float32)


def grid_with_wall(gap: bool) -> np.ndarray:
    """Points of the integer grid [0, 10]^2 float32 [M, 2] without the wall x = 5, y <= 8 (all y if not `gap`)."""
    points = np.array([(x, y) for x in range(11) for y in range(11)], np.float32)
    wall = (points[:, 0] == 5) & ((points[:, 1] <= 8) | (not gap))
    return points[~wall]


# edges: grid neighbours and diagonals (sqrt 2), never across the wall (2 units)
CONFIG = ReplayGraphConfig(max_edge=1.5)


def test_the_path_goes_through_the_gap_and_starts_at_the_right_node():
    graph = ReplayGraph(grid_with_wall(gap=True), EuclideanDistance(), CONFIG)
    start, goal = np.array([4.0, 2.6], np.float32), np.array([6.0, 2.0], np.float32)
    chain = graph.search(start, goal)
    assert chain.subgoals.shape == (len(chain.nodes), 2)
    # entering at (4, 3) (0.4 away) beats (4, 2) (0.6 away, one step further from the gap)
    np.testing.assert_array_equal(chain.subgoals[0], [4.0, 3.0])
    assert chain.subgoals[:, 1].max() >= 9  # over the wall's top ...
    crossing = chain.subgoals[np.abs(chain.subgoals[:, 0] - 5) < 0.5]
    assert (crossing[:, 1] >= 9).all()  # ... and never through it
    np.testing.assert_array_equal(chain.subgoals[-1], [6.0, 2.0])
    # 0.4 in, up to (4, 8), diagonally over the gap node (5, 9) to (6, 8), down to (6, 2)
    assert chain.cost == pytest.approx(0.4 + 5 + 2 * np.sqrt(2) + 6, abs=1e-4)
    steps = np.linalg.norm(np.diff(chain.subgoals, axis=0), axis=-1)
    assert steps.max() <= CONFIG.max_edge  # every hop is a local edge


def test_the_stride_keeps_every_kth_node_and_the_last():
    nodes = grid_with_wall(gap=True)
    full = ReplayGraph(nodes, EuclideanDistance(), CONFIG).search(np.float32([4, 2.6]), np.float32([6, 2]))
    strided = ReplayGraph(nodes, EuclideanDistance(), ReplayGraphConfig(max_edge=1.5, waypoint_stride=3))
    chain = strided.search(np.float32([4, 2.6]), np.float32([6, 2]))
    np.testing.assert_array_equal(chain.nodes, full.nodes[::-1][::3][::-1])


def test_a_local_goal_or_an_unreachable_one_gives_an_empty_chain():
    near = ReplayGraph(grid_with_wall(gap=True), EuclideanDistance(), CONFIG).search(np.float32([4, 2]),
                                                                                     np.float32([4, 3]))
    assert near.subgoals.shape == (0, 2) and near.cost == pytest.approx(1.0)  # steer at the goal directly
    blocked = ReplayGraph(grid_with_wall(gap=False), EuclideanDistance(), CONFIG).search(np.float32([4, 2]),
                                                                                         np.float32([6, 2]))
    assert blocked.subgoals.shape == (0, 2) and blocked.cost == np.inf  # flat MPC toward the goal


def test_floyd_warshall_agrees_with_a_known_small_graph():
    inf = np.inf
    weights = np.array([[0, 1, 5, inf], [inf, 0, 1, inf], [inf, inf, 0, 1], [inf, inf, inf, 0]], np.float32)
    lengths, next_hop = shortest_paths(weights)
    np.testing.assert_allclose(lengths[0], [0, 1, 2, 3])
    assert next_hop[0, 3] == 1 and next_hop[1, 3] == 2 and next_hop[3, 0] == -1 and lengths[3, 0] == inf


def test_pairwise_steps_is_the_same_in_any_batch_size():
    nodes = grid_with_wall(gap=True)[:30]
    whole = pairwise_steps(EuclideanDistance(), nodes, pair_batch=10_000)
    np.testing.assert_allclose(pairwise_steps(EuclideanDistance(), nodes, pair_batch=7), whole)
    np.testing.assert_allclose(whole, np.linalg.norm(nodes[:, None] - nodes[None], axis=-1), rtol=1e-6)


def test_named_errors():
    nodes = grid_with_wall(gap=True)
    with pytest.raises(ValueError, match=r"nodes: expected shape .*got \(112,\)"):
        ReplayGraph(nodes[:, 0], EuclideanDistance())
    with pytest.raises(TypeError, match="nodes: expected dtype float32"):
        ReplayGraph(nodes.astype(np.float64), EuclideanDistance())
    with pytest.raises(ValueError, match="nodes: expected at least 2 latents"):
        ReplayGraph(nodes[:1], EuclideanDistance())
    with pytest.raises(TypeError, match="distance: expected an hvp.contracts.Distance"):
        ReplayGraph(nodes, object())
    graph = ReplayGraph(nodes, EuclideanDistance(), CONFIG)
    with pytest.raises(ValueError, match=r"start: expected shape \(2,\)"):
        graph.search(np.zeros(3, np.float32), np.zeros(2, np.float32))
    with pytest.raises(ConfigError, match="max_edge must be > 0"):
        ReplayGraphConfig(max_edge=0)


@pytest.mark.parametrize("encoded_position", [False, True])  # the toy's encode() and filtered latent agree
def test_graph_subgoals_lead_the_controller_around_the_wall(linear_runtime, encoded_position):
    # nodes: a grid over the toy system's positions without the wall x = 0, y < 0.5 (PositionDistance's)
    ticks = np.arange(-1.0, 1.01, 0.25)
    points = [(x, y) for x in ticks for y in ticks if not (abs(x) < 1e-6 and y < 0.5)]
    nodes = np.array([[x, y, 0, 0] for x, y in points], np.float32)
    graph = ReplayGraph(nodes, PositionDistance(), ReplayGraphConfig(max_edge=3.6))  # 0.25 grid: 2.5 / 3.5 steps
    controller = HierarchicalController(low_level(linear_runtime), PositionDistance(wall_top=0.5), graph,
                                        HierarchicalConfig(mode="graph", reach_steps=1.0,
                                                           encoded_position=encoded_position))
    visited, states = closed_loop(controller, START, GOAL, 60)
    assert states[0]["subgoals"][:, 1].max() >= 0.5  # the chain goes over the wall
    assert visited[:, 1].max() >= 0.4  # and the ball follows it instead of the straight line
    assert np.linalg.norm(visited[-1, :2] - GOAL[:2]) < 0.1


def test_the_controller_wants_a_graph_for_mode_graph(linear_runtime):
    search = SubgoalSearch(StraightLineGenerator(), PositionDistance(), SubgoalSearchConfig())
    with pytest.raises(TypeError, match="search: mode 'graph' needs a ReplayGraph, got SubgoalSearch"):
        HierarchicalController(low_level(linear_runtime), PositionDistance(), search, HierarchicalConfig(mode="graph"))



# -- trajectory graph (SPTM) ----------------------------------------------------------------------
def line(begin, end, count=21) -> np.ndarray:
    """An 'episode' of `count` points float32 [count, 2] evenly from `begin` to `end` (0.1 apart for these)."""
    return np.linspace(begin, end, count).astype(np.float32)


def two_episodes(second_begin, second_end) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Episode 0 along y = 0 from x = -1 to 1, episode 1 between the given points; latents = positions
    -> (latents, episodes, frames)."""
    latents = np.concatenate([line([-1, 0], [1, 0]), line(second_begin, second_end)])
    return latents, np.repeat([0, 1], 21), np.tile(np.arange(21), 2)


def test_the_path_takes_the_shortcut_where_two_episodes_cross():
    graph = trajectory_graph(*two_episodes([0.01, -1], [0.01, 1]), stride=1)
    # consecutive nodes are 0.1 apart: 1 step each; the shortcut threshold is that median distance
    assert graph.distance.steps_per_unit == pytest.approx(10.0) and graph.config.max_edge == pytest.approx(1.0)
    chain = graph.search(np.float32([-1, 0]), np.float32([0.01, 1]))
    # along episode 0 to its middle (10 frames), over the 0.01-wide crossing (0.1 steps), up episode 1 (10 frames)
    assert chain.cost == pytest.approx(20.1, abs=1e-3)
    np.testing.assert_allclose(chain.subgoals[[0, -1]], [[-1, 0], [0.01, 1]], atol=1e-6)
    assert 10 in chain.nodes and 21 + 10 in chain.nodes  # the two crossing nodes
    steps = np.linalg.norm(np.diff(chain.subgoals, axis=0), axis=-1)
    assert steps.max() <= 0.1 + 1e-6  # every hop a real step or a same-place shortcut


def test_episodes_are_walked_both_ways():
    graph = trajectory_graph(*two_episodes([0.01, -1], [0.01, 1]), stride=1)
    chain = graph.search(np.float32([1, 0]), np.float32([0.01, -1]))  # against episode 0's and 1's frame order
    # back along episode 0 to (0.1, 0) (9 frames), over to (0.01, 0) (0.09 apart: 0.9 steps), down episode 1
    np.testing.assert_array_equal(chain.nodes, [*range(20, 10, -1), *range(31, 20, -1)])
    assert chain.cost == pytest.approx(9 + 0.9 + 10, abs=1e-3)


def test_no_shortcut_across_a_gap_wider_than_the_threshold():
    graph = trajectory_graph(*two_episodes([0, 0.15], [0, 2.15]), stride=1)  # nearest pair 0.15 > 0.1 apart
    chain = graph.search(np.float32([-1, 0]), np.float32([0, 2.15]))
    assert chain.subgoals.shape == (0, 2) and chain.cost == np.inf  # unconnected: flat MPC toward the goal
    assert graph.edges == 2 * 2 * 20  # only the episodes' own steps, both ways


def test_trajectory_graph_named_errors():
    latents, episodes, frames = two_episodes([0.01, -1], [0.01, 1])
    with pytest.raises(ValueError, match=r"episodes, frames: expected shape \(42,\).*got \(41,\)"):
        trajectory_graph(latents, episodes[:-1], frames, stride=1)
    with pytest.raises(ValueError, match="stride, shortcut_quantile, join_quantile: expected >= 1 and two in"):
        trajectory_graph(latents, episodes, frames, stride=0)
    with pytest.raises(ValueError, match="episodes: expected at least one episode with 2 nodes"):
        trajectory_graph(latents, np.arange(42), frames, stride=1)
    with pytest.raises(ValueError, match="consecutive nodes encode identically"):
        trajectory_graph(np.zeros_like(latents), episodes, frames, stride=1)


def test_trajectory_nodes_round_trip_through_the_checkpoint_file(tmp_path):
    class PositionEncoder:
        def encode(self, images):
            return images[:, 0, 0, :2].astype(np.float32)

    class Dataset:
        episodes = [{"image": np.arange(7 * 2, dtype=np.uint8).reshape(7, 1, 1, 2)} for _ in range(3)]

    nodes = trajectory_nodes(PositionEncoder(), Dataset(), count=10, stride=3)
    np.testing.assert_array_equal(nodes["frames"], [0, 3, 6, 0, 3, 6, 0, 3, 6])  # whole episodes only, <= 10
    np.testing.assert_array_equal(nodes["episodes"], np.repeat([0, 1, 2], 3))
    loaded, stride = load_graph_nodes(save_graph_nodes(tmp_path / "nodes.safetensors", nodes, 3, "toy"))
    assert stride == 3 and all(np.array_equal(loaded[key], nodes[key]) for key in nodes)
