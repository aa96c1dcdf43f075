"""Push episodes by where they start: success of `hvp plan --env push` runs against the start geometry.

    MUJOCO_GL=egl python bench/push_failures.py \
        --summary readout=runs/push-onpolicy/plan_cem_readout_h14/summary.json \
        --out bench/results/push_failures.json

The seed of each episode fixes its start, so every run's summary.json is re-read against the same starts,
rebuilt from the env: where the pusher stands relative to the block and the spot behind it (the pushing spot
of PushEnv.state_cost), and how far it must walk around the block to get there. Each run gets one row per bin:
side (cosine between block->pusher and goal->block: behind the block >= 0.3, beside, in front < -0.3) and
walk length. Writes bench/results/push_failures.json.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
from results_io import named_paths, write_results

SIDES = (("behind", 0.3, 1.01), ("beside", -0.3, 0.3), ("in front", -1.01, -0.3))
WALKS = (("walk < 0.5", 0.0, 0.5), ("walk 0.5-1", 0.5, 1.0), ("walk >= 1", 1.0, np.inf))


def start_geometry(seeds: list[int]) -> dict[int, dict[str, float]]:
    """Per seed: block distance to goal, the pusher's walk to its pushing spot, and its side of the block."""
    from hvp.sim import make
    from hvp.sim.push import pushing_walk

    env, found = make("push"), {}
    try:
        for seed in seeds:
            _, info = env.reset(seed=seed)
            state, goal = info["true_state"], env.unwrapped.goal_state
            distance, walk = (float(x) for x in pushing_walk(state, goal))
            away, to_goal = state[:2] - state[2:4], goal[2:4] - state[2:4]
            side = float(np.dot(away, -to_goal) / max(np.linalg.norm(away) * distance, 1e-12))
            found[seed] = {"block_distance": distance, "walk": walk, "side_cosine": side}
    finally:
        env.close()
    return found


def binned(episodes: list[dict], geometry: dict[int, dict[str, float]], key: str, bins) -> dict[str, dict]:
    from hvp.agent import wilson_interval

    rows = {}
    for name, low, high in bins:
        chosen = [e["success"] for e in episodes if low <= geometry[e["seed"]][key] < high]
        successes = int(sum(chosen))
        rows[name] = {"successes": successes, "episodes": len(chosen),
                      "success_ci95": list(wilson_interval(successes, len(chosen)))}
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summary", action="append", required=True, metavar="NAME=PATH",
                        help="summary.json of an `hvp plan --env push` run (repeatable)")
    parser.add_argument("--out", default="bench/results/push_failures.json")
    args = parser.parse_args()
    runs = {}
    for name, path in named_paths(args.summary, "--summary").items():
        with open(path) as file:
            summary = json.load(file)
        if summary.get("env") != "push":
            raise SystemExit(f"--summary {path}: a run of env {summary.get('env')!r}, expected 'push'")
        runs[name] = summary
    geometry = start_geometry(sorted({e["seed"] for s in runs.values() for e in s["per_episode"]}))
    record = {"runs": {}, "geometry": {str(seed): g for seed, g in geometry.items()}}
    for name, summary in runs.items():
        episodes = summary["per_episode"]
        by_side, by_walk = binned(episodes, geometry, "side_cosine", SIDES), binned(episodes, geometry, "walk", WALKS)
        record["runs"][name] = {"summary": summary.get("model"), "cost": summary.get("cost"),
                                "horizon": summary.get("horizon"), "successes": summary["successes"],
                                "episodes": len(episodes), "by_side": by_side, "by_walk": by_walk}
        print(f"{name}: {summary['successes']}/{len(episodes)}  " + "  ".join(
            f"{bin_name} {row['successes']}/{row['episodes']}" for bin_name, row in {**by_side, **by_walk}.items()))
    write_results(args.out, min(geometry), record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
