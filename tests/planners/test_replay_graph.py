"""Replay-graph search on points of a 2-D grid with a wall (latents = positions; edges between grid neighbours,
never across the wall), a long line that no dense M x M graph would fit in memory, and trajectory graphs on two
straight 'episodes' in the plane."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree
from test_hierarchical import GOAL, START, PositionDistance, StraightLineGenerator, closed_loop, low_level

from hvp.config import ConfigError
from hvp.hierarchy import load_graph_nodes, save_graph_nodes, trajectory_nodes
from hvp.planners.hierarchical import HierarchicalConfig, HierarchicalController
from hvp.planners.replay_graph import LatentSteps, ReplayGraph, ReplayGraphConfig, trajectory_graph
from hvp.planners.subgoal_search import SubgoalSearch, SubgoalSearchConfig

EVERY_NODE = ReplayGraphConfig(waypoint_spacing=0.0)
UNIT = LatentSteps(1.0)  # one step per unit of latent distance


def grid_with_wall(gap: bool) -> np.ndarray:
    """Points of the integer grid [0, 10]^2 float32 [M, 2] without the wall x = 5, y <= 8 (all y if not `gap`)."""
    points = np.array([(x, y) for x in range(11) for y in range(11)], np.float32)
    wall = (points[:, 0] == 5) & ((points[:, 1] <= 8) | (not gap))
    return points[~wall]


def grid_graph(gap: bool, config: ReplayGraphConfig = EVERY_NODE) -> ReplayGraph:
    """Edges: grid neighbours and diagonals (sqrt 2), never across the wall (2 units); joins within 1 step."""
    nodes = grid_with_wall(gap)
    return ReplayGraph(nodes, cKDTree(nodes).query_pairs(1.5, output_type="ndarray"), UNIT, 1.0, config)


def test_the_path_goes_through_the_gap_and_starts_at_the_right_node():
    graph = grid_graph(gap=True)
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
    assert steps.max() <= 1.5  # every hop is an edge


def test_waypoints_are_spaced_along_the_path_and_keep_the_last():
    full = grid_graph(gap=True).search(np.float32([4, 2.6]), np.float32([6, 2]))
    spaced = grid_graph(gap=True, config=ReplayGraphConfig(waypoint_spacing=3.0))
    chain = spaced.search(np.float32([4, 2.6]), np.float32([6, 2]))
    assert set(chain.nodes) <= set(full.nodes) and chain.nodes[-1] == full.nodes[-1]
    along = np.linalg.norm(np.diff(chain.subgoals[:-1], axis=0), axis=-1)
    assert (along >= 3.0 - 1e-6).all() and len(chain.nodes) < len(full.nodes) / 2
    np.testing.assert_array_equal(chain.subgoals[0], [4.0, 6.0])  # 3 steps up from the entry (4, 3)


def test_a_local_goal_or_an_unreachable_one_gives_an_empty_chain():
    near = grid_graph(gap=True).search(np.float32([4, 2]), np.float32([4, 3]))
    assert near.subgoals.shape == (0, 2) and near.cost == pytest.approx(1.0)  # steer at the goal directly
    blocked = grid_graph(gap=False).search(np.float32([4, 2]), np.float32([6, 2]))
    assert blocked.subgoals.shape == (0, 2) and blocked.cost == np.inf  # flat MPC toward the goal
    nowhere = grid_graph(gap=True).search(np.float32([4, 2]), np.float32([30, 30]))  # the goal joins no node
    assert nowhere.subgoals.shape == (0, 2) and nowhere.cost == np.inf


def test_a_hairpin_of_twenty_thousand_nodes_with_one_shortcut():
    # 20k nodes (a dense float32 M x M matrix would be 1.6 GB): out along y = 0, back along y = 1, one unit apart
    count = 20_000
    out_and_back = np.arange(count) < count // 2
    nodes = np.stack([np.where(out_and_back, np.arange(count), count - 1 - np.arange(count)), ~out_and_back],
                     1).astype(np.float32)
    edges = np.concatenate([np.stack([np.arange(count - 1), np.arange(1, count)], 1), [[10, count - 11]]])
    graph = ReplayGraph(nodes, edges, UNIT, 0.5, EVERY_NODE)
    assert graph.edges == 2 * count
    chain = graph.search(np.float32([0, 0]), np.float32([5, 1]))
    # 10 steps out to (10, 0), across the shortcut to (10, 1) (1 step), 5 back: not the 19994 of the hairpin
    np.testing.assert_array_equal(chain.nodes, [*range(11), *range(count - 11, count - 5)])
    assert chain.cost == pytest.approx(16.0) and chain.seconds < 5


def test_named_errors():
    nodes = grid_with_wall(gap=True)
    edges = np.array([[0, 1]])
    with pytest.raises(ValueError, match=r"nodes: expected shape .*got \(112,\)"):
        ReplayGraph(nodes[:, 0], edges, UNIT, 1.0)
    with pytest.raises(TypeError, match="nodes: expected dtype float32"):
        ReplayGraph(nodes.astype(np.float64), edges, UNIT, 1.0)
    with pytest.raises(ValueError, match="nodes: expected at least 2 latents"):
        ReplayGraph(nodes[:1], edges, UNIT, 1.0)
    with pytest.raises(ValueError, match=r"edges: expected node indices in \[0, 112\), got 0..112"):
        ReplayGraph(nodes, [[0, 112]], UNIT, 1.0)
    with pytest.raises(ValueError, match="distance, join_steps: expected a LatentSteps and a radius > 0"):
        ReplayGraph(nodes, edges, PositionDistance(), 1.0)
    graph = ReplayGraph(nodes, edges, UNIT, 1.0)
    with pytest.raises(ValueError, match=r"start: expected shape \(2,\)"):
        graph.search(np.zeros(3, np.float32), np.zeros(2, np.float32))
    with pytest.raises(ConfigError, match=r"join_quantile must be in \(0, 1\]"):
        ReplayGraphConfig(join_quantile=0)


@pytest.mark.parametrize("encoded_position", [False, True])  # the toy's encode() and filtered latent agree
def test_graph_subgoals_lead_the_controller_around_the_wall(linear_runtime, encoded_position):
    # nodes: a grid over the toy system's positions without the wall x = 0, y < 0.5 (PositionDistance's)
    ticks = np.arange(-1.0, 1.01, 0.25)
    points = np.array([(x, y) for x in ticks for y in ticks if not (abs(x) < 1e-6 and y < 0.5)], np.float32)
    nodes = np.concatenate([points, np.zeros_like(points)], 1)
    # grid neighbours and diagonals, 2.5 / 3.5 steps at 10 steps per unit (PositionDistance's scale)
    edges = cKDTree(points).query_pairs(0.36, output_type="ndarray")
    graph = ReplayGraph(nodes, edges, LatentSteps(10.0), 3.6, EVERY_NODE)
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
    graph = trajectory_graph(*two_episodes([0.01, -1], [0.01, 1]), stride=1, config=EVERY_NODE)
    # consecutive nodes are 0.1 apart: 1 step each; shortcuts and joins within that distance
    assert graph.distance.steps_per_unit == pytest.approx(10.0) and graph.join_steps == pytest.approx(1.0)
    chain = graph.search(np.float32([-1, 0]), np.float32([0.01, 1]))
    # along episode 0 to its middle (10 frames), over the 0.01-wide crossing (0.1 steps), up episode 1 (10 frames)
    assert chain.cost == pytest.approx(20.1, abs=1e-3)
    np.testing.assert_allclose(chain.subgoals[[0, -1]], [[-1, 0], [0.01, 1]], atol=1e-6)
    assert 10 in chain.nodes and 21 + 10 in chain.nodes  # the two crossing nodes
    steps = np.linalg.norm(np.diff(chain.subgoals, axis=0), axis=-1)
    assert steps.max() <= 0.1 + 1e-6  # every hop a real step or a same-place shortcut


def test_episodes_are_walked_both_ways():
    graph = trajectory_graph(*two_episodes([0.01, -1], [0.01, 1]), stride=1, config=EVERY_NODE)
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
    with pytest.raises(ValueError, match="stride: expected >= 1 frames between nodes, got 0"):
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
