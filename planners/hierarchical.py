"""Hierarchical controller: a chain of subgoal latents on top of latent MPC (hvp.contracts.Controller).

Each act():
1. filter the image (a look-ahead copy of what the low level's act() does) -> the current latent
   (encoded_position: encode() the image instead, the space of graph nodes and goals);
2. at the first step, plan the chain: generated (SubgoalSearch from the current latent to the
   goal), graph (ReplayGraph: a shortest path through dataset latents, planners/replay_graph.py),
   oracle (latents of given images) or none (flat MPC: the target is the goal);
3. switch targets: a subgoal counts as reached when the distance predicts <= reach_steps
   (or the squared latent distance is under latent_threshold); skip to a later target the
   distance says is nearer than the current one (it was passed, or the detour is moot);
   move on when the segment's step budget runs out (HVF);
4. replan the chain from here when the predicted steps to the current target have not
   improved by min_progress for stall_steps steps (HVF never replans: replan=False);
5. the low level (LatentMPC.set_target + act) returns the action.

Carried state (a dict the caller owns): low (the LatentMPC state), goal [D], subgoals [K, D],
index (current target; K = the goal), segment_steps, best (lowest predicted steps to the
current target), since_progress, replans, chains (every planned chain, for strips),
subgoal_seconds (time of each chain search), age (the low level's; imagined() gives its plan's latents for videos).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from hvp.config import Config, require
from hvp.contracts import Distance, check_array
from hvp.planners.mpc import LatentMPC
from hvp.planners.replay_graph import ReplayGraph
from hvp.planners.subgoal_search import SubgoalSearch

SUBGOAL_MODES = ("generated", "graph", "oracle", "none")
# modes whose chain comes from a search object: search(start [D], goal [D], rng) -> .subgoals [K, D], .seconds
CHAIN_SEARCHES = {"generated": SubgoalSearch, "graph": ReplayGraph}


@dataclasses.dataclass(frozen=True)
class HierarchicalConfig(Config):
    mode: str = "generated"  # generated | graph (replay graph) | oracle (images given to reset) | none (flat MPC)
    reach_steps: float = 2.0  # a target is reached when the distance predicts at most this many steps
    latent_threshold: float = 0.0  # ... or the squared latent distance is under this (0: off)
    segment_budget: int = 40  # steps toward one subgoal before moving on anyway (HVF: a fixed budget)
    skip: bool = True  # jump to a later target predicted nearer than the current one
    skip_margin: float = 2.0  # ... by at least this many steps
    replan: bool = True  # replan the chain when progress stalls (HVF: False)
    stall_steps: int = 12  # steps without progress that count as stalled
    min_progress: float = 1.0  # predicted steps the distance to the target must drop to count as progress
    max_replans: int = 6  # per episode
    # compare encode(image) instead of the filtered latent with the chain and the rules above: node latents are
    # encode()s, and on maze-hard the filtered latent of a frame sits ~10 graph steps from its own encode()
    encoded_position: bool = False

    def validate(self) -> None:
        require(self.mode in SUBGOAL_MODES, "HierarchicalConfig.mode must be one of {} (got {!r})", SUBGOAL_MODES,
                self.mode)
        require(self.reach_steps >= 0 and self.latent_threshold >= 0,
                "HierarchicalConfig.reach_steps and latent_threshold must be >= 0 (got {}, {})", self.reach_steps,
                self.latent_threshold)
        for name in ("segment_budget", "stall_steps"):
            require(getattr(self, name) >= 1, "HierarchicalConfig.{} must be >= 1 (got {})", name,
                    getattr(self, name))
        require(self.max_replans >= 0, "HierarchicalConfig.max_replans must be >= 0 (got {})", self.max_replans)


HierarchicalConfig.PRESETS = {"debug": dict(segment_budget=15, stall_steps=5), "cpu": {}, "gpu": {},
                              "hvf": dict(replan=False, skip=False)}


class HierarchicalController:
    """Controller: reset(goal_image, seed, subgoal_images) -> state; act(state, obs) -> (state, action [A])."""

    def __init__(self, low: LatentMPC, distance: Distance, search: SubgoalSearch | ReplayGraph | None = None,
                 config: HierarchicalConfig | None = None) -> None:
        """`search`: a SubgoalSearch (mode "generated") or a ReplayGraph (mode "graph"); None otherwise."""
        if not isinstance(low, LatentMPC):
            raise TypeError(f"low: expected a LatentMPC, got {type(low).__name__}")
        if not isinstance(distance, Distance):
            raise TypeError(f"distance: expected an hvp.contracts.Distance, got {type(distance).__name__}")
        self.config = config or HierarchicalConfig()
        needed = CHAIN_SEARCHES.get(self.config.mode)
        if needed is not None and not isinstance(search, needed):
            raise TypeError(f"search: mode {self.config.mode!r} needs a {needed.__name__}, got {type(search).__name__}")
        self.low, self.distance, self.search = low, distance, search
        self.runtime = low.runtime

    def reset(self, goal_image: np.ndarray, seed: int | None = None,
              subgoal_images: np.ndarray | None = None) -> dict[str, Any]:
        """goal_image uint8 [h, w, 3]; subgoal_images uint8 [K, h, w, 3] in time order (mode "oracle" only)."""
        low = self.low.reset(goal_image, seed)
        subgoals = np.zeros((0, self.runtime.latent_dim), np.float32)
        if self.config.mode == "oracle":
            if subgoal_images is None:
                raise ValueError("subgoal_images: mode 'oracle' needs uint8 [K, h, w, 3] images, got None")
            check_array("subgoal_images", subgoal_images, (None, *self.runtime.image_shape), np.uint8)
            subgoals = self.runtime.encode(subgoal_images).astype(np.float32)
        elif subgoal_images is not None:
            raise ValueError(f"subgoal_images: only mode 'oracle' takes images, this controller is "
                             f"{self.config.mode!r}")
        return {"low": low, "goal": low["goal"], "subgoals": subgoals, "index": 0,
                "planned": self.config.mode not in CHAIN_SEARCHES, "segment_steps": 0, "best": float("inf"),
                "since_progress": 0, "replans": 0, "chains": [subgoals] if len(subgoals) else [],
                "subgoal_seconds": [], "age": 0}

    # -- high level ---------------------------------------------------------------------------------
    def plan_chain(self, state: dict[str, Any], latent: np.ndarray) -> dict[str, Any]:
        """Search a fresh chain from `latent` float32 [D] to the goal; the current target becomes its first subgoal."""
        low = state["low"]
        rng = np.random.default_rng([low["seed"], low["step"], 7])  # own stream: independent of the low level's
        chain = self.search.search(latent, state["goal"], rng)
        return {**state, "subgoals": chain.subgoals, "index": 0, "planned": True, "chains": [*state["chains"],
                chain.subgoals], "subgoal_seconds": [*state["subgoal_seconds"], chain.seconds],
                "segment_steps": 0, "best": float("inf"), "since_progress": 0}

    def targets(self, state: dict[str, Any]) -> np.ndarray:
        """The remaining targets float32 [R, D]: subgoals from the current index, then the goal."""
        return np.concatenate([state["subgoals"][state["index"]:], state["goal"][None]])

    def next_index(self, state: dict[str, Any], latent: np.ndarray) -> tuple[int, float]:
        """-> (index of the target to pursue now, its predicted steps) after the reached/skip/budget rules."""
        cfg, targets = self.config, self.targets(state)
        steps = np.asarray(self.distance.steps(np.repeat(latent[None], len(targets), 0), targets), np.float64)
        reached = steps <= cfg.reach_steps
        if cfg.latent_threshold > 0:
            reached |= np.sum((targets - latent) ** 2, -1) < cfg.latent_threshold
        reached[-1] = False  # the goal is never "done": keep steering at it
        offset = int(np.flatnonzero(reached).max()) + 1 if reached.any() else 0
        if cfg.skip:
            nearest = offset + int(np.argmin(steps[offset:]))
            if steps[nearest] + cfg.skip_margin < steps[offset]:
                offset = nearest
        if offset == 0 and len(targets) > 1 and state["segment_steps"] >= cfg.segment_budget:
            offset = 1  # budget spent: give up on this subgoal
        return state["index"] + offset, float(steps[offset])

    # -- Controller ---------------------------------------------------------------------------------
    def imagined(self, state: dict[str, Any]) -> np.ndarray:
        """float32 [H, D]: what the low level imagines for its current plan (for videos)."""
        return self.low.imagined(state["low"])

    def act(self, state: dict[str, Any], obs: Mapping[str, np.ndarray]) -> tuple[dict[str, Any], np.ndarray]:
        """obs {"image": uint8 [h, w, 3], ...} -> (new state, action float32 [A]). `state` is not mutated."""
        if "image" not in obs:
            raise KeyError(f"obs: expected an 'image' entry, got keys {sorted(obs)}")
        low = state["low"]
        image = check_array('obs["image"]', obs["image"], tuple(self.runtime.image_shape), np.uint8)
        if self.config.encoded_position:
            latent = self.runtime.encode(image[None])[0].astype(np.float32)
        else:
            # look ahead at the belief the low level will hold after filtering this image (deterministic runtime)
            belief = self.runtime.observe(low["belief"], image[None], low["last_action"][None])
            latent = self.runtime.latent(belief)[0].astype(np.float32)
        if not state["planned"]:
            state = self.plan_chain(state, latent)
        index, steps = self.next_index(state, latent)
        if index != state["index"]:
            state = {**state, "index": index, "segment_steps": 0, "best": steps, "since_progress": 0}
        elif steps < state["best"] - self.config.min_progress:
            state = {**state, "best": steps, "since_progress": 0}
        else:
            state = {**state, "since_progress": state["since_progress"] + 1}
        cfg = self.config
        if (cfg.replan and cfg.mode in CHAIN_SEARCHES and state["since_progress"] >= cfg.stall_steps
                and state["replans"] < cfg.max_replans):
            state = {**self.plan_chain(state, latent), "replans": state["replans"] + 1}
        target = self.targets(state)[0]
        if not np.array_equal(target, low["target"]):
            low = self.low.set_target(low, target)
        low, action = self.low.act(low, obs)
        return {**state, "low": low, "segment_steps": state["segment_steps"] + 1, "age": low["age"]}, action
