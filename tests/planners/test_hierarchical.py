"""Subgoal search on distances with a known best chain, and the hierarchical controller's switching,
skipping, budget and replanning rules in closed loop on the exactly linear latent system."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import LinearRuntime, step_true_system

from hvp.contracts import Controller, Distance, SubgoalGenerator
from hvp.planners import make_optimizer
from hvp.planners.costs import LatentDistance
from hvp.planners.hierarchical import HierarchicalConfig, HierarchicalController
from hvp.planners.mpc import LatentMPC, MPCConfig
from hvp.planners.subgoal_search import SubgoalSearch, SubgoalSearchConfig, chain_cost

STEP = 0.1  # the toy distances count one "step" per 0.1 of position


class PositionDistance:
    """Distance: Euclidean distance of the positions (latent[:2]) in steps, plus `penalty` for each segment
    that crosses the wall x = 0, y in [-2, wall_top] (a straight line is then blocked below wall_top)."""

    def __init__(self, wall_top: float | None = None, penalty: float = 100.0) -> None:
        self.wall_top, self.penalty = wall_top, penalty

    def steps(self, latents_a: np.ndarray, latents_b: np.ndarray) -> np.ndarray:
        a, b = latents_a[:, :2], np.broadcast_to(latents_b[:, :2], latents_a[:, :2].shape)
        steps = np.linalg.norm(a - b, axis=-1) / STEP
        if self.wall_top is not None:
            crosses = np.sign(a[:, 0]) != np.sign(b[:, 0])
            fraction = a[:, 0] / np.where(crosses, a[:, 0] - b[:, 0], 1.0)
            height = a[:, 1] + fraction * (b[:, 1] - a[:, 1])  # where the segment meets x = 0
            steps = steps + self.penalty * (crosses & (height < self.wall_top))
        return steps.astype(np.float32)


class ConstantDistance:
    """Distance that never predicts progress: every pair is 10 steps apart."""

    def steps(self, latents_a: np.ndarray, latents_b: np.ndarray) -> np.ndarray:
        return np.full(len(latents_a), 10.0, np.float32)


class StraightLineGenerator:
    """SubgoalGenerator: subgoal k sits at (k + 1) / (K + 1) of the straight line, its position moved by its code."""

    code_dim = 2

    def propose(self, start: np.ndarray, goal: np.ndarray, codes: np.ndarray) -> np.ndarray:
        count = codes.shape[1]
        fractions = (np.arange(1, count + 1) / (count + 1))[None, :, None]
        chain = np.broadcast_to(start + fractions * (goal - start), (*codes.shape[:2], 4)).copy()
        chain[..., :2] += codes
        return chain.astype(np.float32)


START, GOAL = np.array([-1.0, 0.0, 0, 0], np.float32), np.array([1.0, 0.0, 0, 0], np.float32)


def test_toy_pieces_satisfy_the_contracts():
    assert isinstance(PositionDistance(), Distance) and isinstance(StraightLineGenerator(), SubgoalGenerator)


@pytest.mark.parametrize("subgoals", [1, 3])
@pytest.mark.parametrize("how", ["max", "sum"])
def test_search_finds_the_straight_chain_on_a_euclidean_distance(subgoals, how):
    search = SubgoalSearch(StraightLineGenerator(), PositionDistance(), SubgoalSearchConfig(subgoals=subgoals,
                                                                                             chain_cost=how))
    chain = search.search(START, GOAL, np.random.default_rng(0))
    total = 2.0 / STEP
    best = total / (subgoals + 1) if how == "max" else total  # evenly spaced on the straight line
    assert chain.subgoals.shape == (subgoals, 4) and chain.segment_steps.shape == (subgoals + 1,)
    assert best * (1 - 1e-5) <= chain.cost < best * 1.05
    assert np.abs(chain.subgoals[:, 1]).max() < 0.1  # on the line, not wandering off
    # what the search returns is scored like the population: cost = max or sum of its segments
    assert chain.cost == pytest.approx(float(chain_cost(chain.segment_steps[None], how)[0]))


def test_search_goes_around_an_obstacle():
    search = SubgoalSearch(StraightLineGenerator(), PositionDistance(wall_top=0.5), SubgoalSearchConfig(subgoals=1))
    straight = search.distance.steps(START[None], GOAL[None])[0]
    chain = search.search(START, GOAL, np.random.default_rng(0))
    assert straight > 100  # the straight line is blocked
    assert chain.cost < 100 and chain.subgoals[0, 1] >= 0.5  # over the wall's top
    # optimum: the subgoal at (0, 0.5) gives max segment sqrt(1 + 0.25) / STEP = 11.18 steps
    assert chain.cost < 11.18 * 1.1


def test_search_refuses_a_tree_size_the_generator_cannot_make():
    with pytest.raises(ValueError, match="subgoals must be 2\\*\\*L - 1"):
        SubgoalSearchConfig(subgoals=2)


def low_level(runtime: LinearRuntime) -> LatentMPC:
    return LatentMPC(runtime, make_optimizer("cem"), LatentDistance("all"), MPCConfig.preset("cpu"))


def images(positions: list[tuple[float, float]]) -> np.ndarray:
    return LinearRuntime.render(np.array([[x, y, 0, 0] for x, y in positions]))


def closed_loop(controller: HierarchicalController, start: np.ndarray, goal: np.ndarray, steps: int, **reset):
    """-> (true states [steps + 1, 4], controller states per step)."""
    state = controller.reset(LinearRuntime.render(goal[None])[0], **reset)
    true_state, visited, states = start.astype(np.float64), [start], []
    for _ in range(steps):
        state, action = controller.act(state, {"image": LinearRuntime.render(true_state[None])[0]})
        true_state = step_true_system(true_state, action)
        visited.append(true_state)
        states.append(state)
    return np.array(visited), states


def test_oracle_subgoals_are_visited_in_order_then_the_goal(linear_runtime):
    waypoints = [(-1.0, 1.0), (1.0, 1.0)]  # a detour the flat controller would never take
    controller = HierarchicalController(low_level(linear_runtime), PositionDistance(),
                                       config=HierarchicalConfig(mode="oracle", reach_steps=1.0))
    assert isinstance(controller, Controller)
    visited, states = closed_loop(controller, START, GOAL, 40, subgoal_images=images(waypoints))
    indices = [s["index"] for s in states]
    assert indices == sorted(indices) and indices[-1] == 2  # 0 -> 1 -> goal, never back
    first_switch = indices.index(1)
    for k, (x, y) in enumerate(waypoints):  # each waypoint was passed within about one "step" of it
        assert np.linalg.norm(visited[:, :2] - (x, y), axis=-1).min() < 0.15, f"waypoint {k} never reached"
    assert visited[first_switch, 1] > 0.8  # the switch happened near the first waypoint, not early
    assert np.linalg.norm(visited[-1, :2] - GOAL[:2]) < 0.1


@pytest.mark.parametrize("skip", [True, False])
def test_a_subgoal_already_passed_is_skipped(linear_runtime, skip):
    # at x = 0.5, the first subgoal lies behind (10 steps) and the second just ahead (1 step)
    here = np.array([0.5, 0.0, 0, 0], np.float32)
    config = HierarchicalConfig(mode="oracle", reach_steps=0.5, skip=skip)
    controller = HierarchicalController(low_level(linear_runtime), PositionDistance(), config=config)
    _, states = closed_loop(controller, here, GOAL, 1, subgoal_images=images([(-0.5, 0.0), (0.6, 0.0)]))
    assert states[0]["index"] == (1 if skip else 0)


def test_the_step_budget_moves_on_from_an_unreachable_subgoal(linear_runtime):
    config = HierarchicalConfig(mode="oracle", reach_steps=0.5, skip=False, segment_budget=3)
    controller = HierarchicalController(low_level(linear_runtime), ConstantDistance(), config=config)
    _, states = closed_loop(controller, START, GOAL, 5, subgoal_images=images([(1.9, 1.9)]))
    assert [s["index"] for s in states] == [0, 0, 0, 1, 1]  # three steps on the subgoal, then the goal


@pytest.mark.parametrize("replan", [True, False])
def test_a_stalled_chain_is_replanned_unless_hvf_style(linear_runtime, replan):
    config = HierarchicalConfig(mode="generated", replan=replan, stall_steps=3, max_replans=2, skip=False,
                                segment_budget=100)
    search = SubgoalSearch(StraightLineGenerator(), ConstantDistance(), SubgoalSearchConfig.preset("debug"))
    controller = HierarchicalController(low_level(linear_runtime), ConstantDistance(), search, config)
    _, states = closed_loop(controller, START, GOAL, 12)
    # no predicted progress ever: replans every 3 steps, capped at 2; HVF plans once
    assert states[-1]["replans"] == (2 if replan else 0)
    assert len(states[-1]["chains"]) == len(states[-1]["subgoal_seconds"]) == (3 if replan else 1)


def test_generated_subgoals_lead_around_the_wall(linear_runtime):
    search = SubgoalSearch(StraightLineGenerator(), PositionDistance(wall_top=0.5), SubgoalSearchConfig(subgoals=1))
    controller = HierarchicalController(low_level(linear_runtime), PositionDistance(wall_top=0.5), search,
                                        HierarchicalConfig(reach_steps=1.0))
    visited, states = closed_loop(controller, START, GOAL, 40)
    assert states[0]["subgoals"][0, 1] >= 0.5  # the chain goes over the wall
    assert visited[:, 1].max() >= 0.4  # and the ball follows it instead of the straight line
    assert np.linalg.norm(visited[-1, :2] - GOAL[:2]) < 0.1


def test_named_errors(linear_runtime):
    controller = HierarchicalController(low_level(linear_runtime), PositionDistance(),
                                        config=HierarchicalConfig(mode="oracle"))
    with pytest.raises(ValueError, match="subgoal_images: mode 'oracle' needs"):
        controller.reset(LinearRuntime.render(GOAL[None])[0])
    with pytest.raises(TypeError, match="search: mode 'generated' needs a SubgoalSearch"):
        HierarchicalController(low_level(linear_runtime), PositionDistance())
    with pytest.raises(ValueError, match="HierarchicalConfig.mode must be one of"):
        HierarchicalConfig(mode="magic")


def test_one_hierarchical_episode_on_maze_hard_end_to_end(tmp_path):
    """hvp plan --hierarchical on real MuJoCo maze-hard with debug-size models trained here: completes and
    writes the subgoal strip PNG, the video and the summary."""
    import imageio.v2 as imageio

    from hvp.cli import main
    from hvp.data import TrajectoryDataset, save_trajectories
    from hvp.hierarchy import GRAPH_NODES_FILE, load_graph_nodes
    from hvp.models.fit import fit
    from hvp.models.fit_distance import train_distance
    from hvp.models.subgoal import train_subgoals
    from hvp.simulate import simulate

    episodes = simulate("maze-hard", "explore", 6, env_kwargs={"max_steps": 24}, progress=False)
    dataset = TrajectoryDataset(episodes, {"env_name": "maze-hard"})
    run = tmp_path / "run"
    fit(dataset, run, preset="debug", train_overrides={"steps": 5}, threads=1, progress=False)
    train_distance(run, dataset, preset="debug", train_overrides={"steps": 20}, held_out=0, progress=False)
    train_subgoals(run, dataset, preset="debug", train_overrides={"steps": 20, "max_offset": 8}, held_out=0,
                   progress=False)
    out = tmp_path / "plan"
    assert main(["plan", "--env", "maze-hard", "--model", str(run), "--hierarchical", "--preset", "debug",
                 "--episodes", "1", "--max-steps", "6", "--videos", "1", "--threads", "1", "--no-progress",
                 "--out", str(out)]) == 0
    strip = imageio.imread(out / "strip_000.png")
    # one row: start, 3 decoded subgoals, goal, final frame, each 64 px wide at scale 2 with 2 px gaps
    assert strip.shape[1] == 2 * (6 * 64 + 5 * 2)
    assert (out / "episode_000.mp4").stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["subgoals"] == "generated" and summary["per_episode"][0]["steps"] == 6
    # graph mode from nodes written by hvp graph-nodes: 6 episodes of 25 frames, every 4th (0, 4, ..., 24)
    data = tmp_path / "data.hdf5"
    save_trajectories(episodes, data, {"env_name": "maze-hard", "env_kwargs": {}})
    assert main(["graph-nodes", str(run), "--data", str(data), "--stride", "4"]) == 0
    nodes, stride = load_graph_nodes(run / GRAPH_NODES_FILE)
    assert stride == 4 and nodes["latents"].dtype == np.float16 and len(nodes["latents"]) == 6 * 7
    assert main(["plan", "--env", "maze-hard", "--model", str(run), "--hierarchical", "--subgoals", "graph",
                 "--cost", "latent", "--preset", "debug", "--episodes", "1", "--max-steps", "6", "--videos", "0",
                 "--threads", "1", "--no-progress", "--out", str(tmp_path / "graph")]) == 0
    summary = json.loads((tmp_path / "graph" / "summary.json").read_text())
    assert summary["subgoals"] == "graph" and summary["per_episode"][0]["steps"] == 6
