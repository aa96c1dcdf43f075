"""Does a push world model imagine contact? Straight pushes from rest, imagined beside MuJoCo.

    MUJOCO_GL=egl python bench/push_contact.py --model onpolicy=checkpoints/push-onpolicy \
        --out bench/results/push_contact.json

For each seeded push start the pusher is placed at rest on the line from the goal through the block,
`gap` behind its pushing spot (PushEnv.state_cost's; gap 0 touches the block), then pushes straight at
the goal for H steps. The same actions run in the simulator and in the model (its belief filtered on
`settle` frames at rest, then imagined); the model's state readout (RUN/readout) reads the imagined
pusher and block. Per gap it reports how far the imagined block moves along the push as a fraction of
how far the true block moves (1: contact imagined right; 0: the pusher passes through the block), and
the same for the pusher. Writes bench/results/push_contact.json.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from results_io import named_paths, write_results

ARENA_LIMIT = 0.85  # where PushEnv places a pusher at random: farther out it may start inside a wall


def push_probe(env, runtime, readout, seed: int, gap: float, horizon: int, settle: int) -> dict[str, float] | None:
    """Imagined and true displacement along one straight push, or None when the start would leave the arena."""
    from hvp.sim.push import PUSH_OFFSET

    env.reset(seed=seed)
    block, goal = env.unwrapped.data.qpos[2:4].copy(), env.unwrapped.goal[:2]
    direction = (goal - block) / np.linalg.norm(goal - block)
    pusher = block - direction * (PUSH_OFFSET + gap)
    if np.max(np.abs(pusher)) > ARENA_LIMIT:
        return None
    qpos = env.unwrapped.data.qpos.copy()
    qpos[:2] = pusher
    obs = env.unwrapped.set_state(qpos)
    belief, still = runtime.initial_state(1), np.zeros((1, runtime.action_dim), np.float32)
    for _ in range(settle):  # the same resting frame: the belief settles on where things are and that they are still
        belief = runtime.observe(belief, obs["image"][None], still)
    actions = np.tile(direction.astype(np.float32), (1, horizon, 1))
    imagined = readout.states(np.concatenate([runtime.latent(belief), runtime.imagine(belief, actions)[0]]))
    start = env.unwrapped.true_state(env.unwrapped.data)
    for action in actions[0]:
        _, _, _, _, info = env.step(action)
    true_moved = (info["true_state"][:4] - start[:4]).reshape(2, 2) @ direction  # pusher, block along the push
    imagined_moved = (imagined[-1, :4] - imagined[0, :4]).reshape(2, 2) @ direction
    return {"seed": seed, "true_pusher": float(true_moved[0]), "true_block": float(true_moved[1]),
            "imagined_pusher": float(imagined_moved[0]), "imagined_block": float(imagined_moved[1])}


def summarize(probes: list[dict[str, float]]) -> dict[str, float]:
    """Medians of imagined / true displacement, and the share of pushes whose imagined block moved under a
    quarter of the true block's way (the pusher imagined through the block)."""
    moving = [p for p in probes if p["true_block"] > 0.05]
    block = np.array([p["imagined_block"] / p["true_block"] for p in moving])
    pusher = np.array([p["imagined_pusher"] / p["true_pusher"] for p in probes if p["true_pusher"] > 0.05])
    return {"pushes": len(probes), "block_moved": len(moving),
            "true_block_median": float(np.median([p["true_block"] for p in probes])),
            "imagined_over_true_block_median": float(np.median(block)) if len(block) else None,
            "imagined_through_share": float(np.mean(block < 0.25)) if len(block) else None,
            "imagined_over_true_pusher_median": float(np.median(pusher)) if len(pusher) else None}


def shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, metavar="NAME=RUN",
                        help="a push world model with RUN/readout (repeatable)")
    parser.add_argument("--seeds", type=int, default=40, help="push starts, seeded seed .. seed + seeds - 1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gaps", type=float, nargs="+", default=[0.0, 0.1, 0.2], help="pusher's gap to its spot")
    parser.add_argument("--horizon", type=int, default=12, help="steps of each push (the planner's H or so)")
    parser.add_argument("--settle", type=int, default=3, help="frames filtered at rest before imagining")
    parser.add_argument("--out", default="bench/results/push_contact.json")
    args = parser.parse_args()
    from hvp.models.readout import READOUT_DIR, load_readout
    from hvp.models.runtime import load_runtime
    from hvp.sim import make

    models = named_paths(args.model, "--model")
    env, record = make("push"), {"horizon": args.horizon, "settle": args.settle, "models": {}}
    try:
        for name, run in models.items():
            runtime, readout = load_runtime(run, device="cpu", threads=1), load_readout(Path(run) / READOUT_DIR)
            rows = {}
            for gap in args.gaps:
                probes = [p for seed in range(args.seed, args.seed + args.seeds)
                          if (p := push_probe(env, runtime, readout, seed, gap, args.horizon, args.settle))]
                row = rows[f"gap {gap:g}"] = {**summarize(probes), "probes": probes}
                print(f"{name} gap {gap:g}: {row['pushes']} pushes, true block median {row['true_block_median']:.2f}; "
                      + "; ".join(f"{key} {shown(row[key])}" for key in ("imagined_over_true_block_median",
                                  "imagined_over_true_pusher_median", "imagined_through_share")))
            record["models"][name] = {"run": run, "gaps": rows}
    finally:
        env.close()
    write_results(args.out, args.seed, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
