"""Benchmark of issue 4's planning targets, one run, side by side.

    # full run: needs trained models (hvp collect / hvp train / hvp train-distance, see docs/planning.md)
    MUJOCO_GL=egl python bench/planning.py --model maze-easy=runs/maze-easy --model push=runs/push \
        --data maze-easy=runs/data/maze-easy.hdf5 --data push=runs/data/push.hdf5 --episodes 50
    # smoke run: trains a debug world model, distance and readout per env in a temp folder, 2 episodes per row
    MUJOCO_GL=egl python bench/planning.py --smoke

(a) Spearman of each cost (latent, temporal, pixel) with the true task-space distance, all pairs and close pairs,
    on held-out episodes; (b) every optimizer's act() time (median/p95 ms) and success at an equal sample budget
    N=128 x I=3, H=10 (--horizon, --table-cost); (c) flat latent MPC success per cost (latent, temporal, pixel, readout: the task's state
    cost on states read out of the latents, where RUN_DIR/readout exists) beside random actions and beside CEM on
    the simulator itself (reference upper bound: MuJoCo copies, the task's state cost on true states; never used
    by hvp's controllers); where RUN_DIR/state_dynamics exists (hvp train-state-dynamics) also the readout cost with
    plans imagined in the task's state (hvp plan --imagine state), row "readout+state" (with --proprio also
    "readout+state+proprio");
    (d) plan time per control step with the trained model (cem row). Writes bench/results/planning.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results_io import write_results

from hvp.agent import COSTS, IMAGINATIONS, STATE_DYNAMICS_DIR

CLOSE = 0.3  # "close pairs": true distance under this (arena units; the arena is 2 wide)
TARGETS = {"maze-easy": 0.9, "push": 0.7}


def task_position(env_name: str, true_state: np.ndarray) -> np.ndarray:
    """The coordinates success is measured on: the ball in a maze, the block when pushing (float [..., 2])."""
    return true_state[..., 2:4] if env_name.startswith("push") else true_state[..., :2]


class SimulatorCEM:
    """Reference upper bound: CEM whose 'model' is MuJoCo itself (copies rolled with mujoco.rollout) and whose
    cost is the task's state_cost on true states (what the readout cost estimates from latents). It reads
    simulator state, so it lives here and never in hvp's controllers."""

    def __init__(self, env, optimizer, horizon: int = 10) -> None:
        import mujoco

        self.env, self.optimizer, self.horizon = env.unwrapped, optimizer, horizon
        self.spec = mujoco.mjtState.mjSTATE_FULLPHYSICS

    def reset(self, goal_image: np.ndarray, seed: int | None = None) -> dict:
        return {"plan": np.zeros((self.horizon, self.env.action_space.shape[0]), np.float32),
                "seed": 0 if seed is None else seed, "step": 0}

    def act(self, state: dict, obs: dict) -> tuple[dict, np.ndarray]:
        import mujoco
        from mujoco import rollout

        env, skip = self.env, self.env.frame_skip
        start = np.zeros(mujoco.mj_stateSize(env.model, self.spec))
        mujoco.mj_getState(env.model, env.data, start, self.spec)
        datas = [mujoco.MjData(env.model) for _ in range(2)]
        nq = env.model.nq

        def cost_fn(actions: np.ndarray) -> np.ndarray:  # [N, H, A] -> the task's state cost, mean over the horizon
            controls = np.repeat(actions.astype(np.float64), skip, axis=1)
            states, _ = rollout.rollout(env.model, datas, start[None], controls)
            qpos = states[:, skip - 1::skip, 1:1 + nq]  # mjSTATE_FULLPHYSICS = [time, qpos, qvel, ...]
            # the true state of maze and push is a prefix of qpos
            return env.state_cost(qpos[..., :len(env.goal_state)], env.goal_state).mean(1)

        from hvp.planners.mpc import shift_plan

        result = self.optimizer.optimize(cost_fn, shift_plan(state["plan"], 1),
                                         np.random.default_rng([state["seed"], state["step"]]))
        plan = np.clip(result.plan, -1, 1).astype(np.float32)
        return {**state, "plan": plan, "step": state["step"] + 1}, plan[0].copy()


def cost_correlations(runtime, distance, episodes, env_name: str, pairs: int, seed: int, readout=None) -> dict:
    """(a): Spearman of each cost between (filtered belief of frame i, encode(frame j)) with the true distance;
    the temporal cost when the run has a distance model, the readout cost when it has a readout."""
    from hvp.models.fit_distance import episode_latents, spearman

    latents = episode_latents(runtime, episodes, 1)
    positions = task_position(env_name, np.concatenate([e["true_state"] for e in episodes]))
    rng = np.random.default_rng(seed)
    i, j = rng.integers(latents.frames, size=(2, pairs))
    true = np.linalg.norm(positions[i] - positions[j], axis=-1)
    a, b = latents.filtered[i], latents.encoded[j]
    decoded_a, decoded_b = (runtime.decode(x).astype(np.float32) / 255 for x in (a, b))
    costs = {"latent": np.sum((a - b) ** 2, -1), "pixel": np.mean((decoded_a - decoded_b) ** 2, axis=(1, 2, 3))}
    if distance is not None:
        costs["temporal"] = distance.steps(a, b)
    if readout is not None:
        from hvp.sim import task_state_cost

        state_cost = task_state_cost(readout.task)  # its goal is one state: one call per pair
        costs["readout"] = np.array([state_cost(state_a[None], state_b)[0]
                                     for state_a, state_b in zip(readout.states(a), readout.states(b))])
    close = true < CLOSE
    return {name: {"all": spearman(cost, true), "close": spearman(cost[close], true[close])}
            for name, cost in costs.items()} | {"pairs": pairs, "close_pairs": int(close.sum()), "close_below": CLOSE}


def smoke_model(env_name: str, work: Path, seed: int) -> tuple[str, list]:
    """Collect a few episodes and train a debug world model + distance on them -> (run dir, held-out episodes)."""
    from hvp.data import TrajectoryDataset
    from hvp.models.fit import fit
    from hvp.models.fit_distance import train_distance
    from hvp.models.readout import train_readout
    from hvp.models.state_dynamics import train_state_dynamics
    from hvp.simulate import simulate

    episodes = simulate(env_name, "explore", 10, seed=seed, env_kwargs={"max_steps": 30}, progress=False)
    dataset = TrajectoryDataset(episodes[:8], {"env_name": env_name})
    run = work / env_name
    fit(dataset, run, preset="debug", train_overrides={"steps": 10}, threads=2, progress=False)
    train_distance(run, dataset, preset="debug", held_out=0.25, progress=False)
    train_readout(run, dataset, preset="debug", held_out=0, progress=False)
    train_state_dynamics(dataset, run / STATE_DYNAMICS_DIR, preset="debug", held_out=0, progress=False)
    return str(run), episodes[8:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="ENV=RUN_DIR (with RUN_DIR/distance)")
    parser.add_argument("--data", action="append", default=[], help="ENV=HDF5 for (a); the last 10%% of episodes")
    parser.add_argument("--envs", nargs="+", default=["maze-easy", "push"])
    parser.add_argument("--episodes", type=int, default=50, help="seeded episodes per success row")
    parser.add_argument("--table-episodes", type=int, help="episodes per optimizer row of (b) (default --episodes)")
    parser.add_argument("--pairs", type=int, default=4000, help="pairs for (a)")
    parser.add_argument("--horizon", type=int, default=10, help="H of every planner row and the simulator reference")
    parser.add_argument("--table-cost", default="temporal", choices=COSTS, help="the cost of the optimizer table (b)")
    parser.add_argument("--table-imagine", default="latent", choices=IMAGINATIONS,
                        help="how the optimizer table (b) rolls plans out (state: needs --table-cost readout)")
    parser.add_argument("--imagine", nargs="+", default=list(IMAGINATIONS), choices=IMAGINATIONS,
                        help="how the rows of (c) roll plans out; state: the readout cost only, where "
                             "RUN_DIR/state_dynamics exists (hvp train-state-dynamics)")
    parser.add_argument("--proprio", action="store_true",
                        help="each state row of (c) also with the robot's proprioception in the state "
                             "(hvp plan --proprio)")
    parser.add_argument("--costs", nargs="+", default=list(COSTS), choices=COSTS,
                        help="cost rows of (c); readout only where RUN_DIR/readout exists (hvp train-readout)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, help="episode limit (default: the env's)")
    parser.add_argument("--smoke", action="store_true", help="debug models in a temp folder, 2 episodes per row")
    parser.add_argument("--out", default="bench/results/planning.json")
    args = parser.parse_args()
    if args.smoke:
        args.episodes, args.table_episodes, args.pairs, args.max_steps = 2, 1, 500, args.max_steps or 10

    from hvp.agent import RandomActions, build_controller, evaluate
    from hvp.data import load_dataset
    from hvp.models.readout import READOUT_DIR, load_readout
    from hvp.models.runtime import load_runtime
    from hvp.models.temporal_distance import load_distance
    from hvp.planners import OPTIMIZERS, make_optimizer
    from hvp.sim import make

    models, data = dict(m.split("=", 1) for m in args.model), dict(d.split("=", 1) for d in args.data)
    work = Path(tempfile.mkdtemp(prefix="hvp-bench-planning-"))
    budget = dict(population=128, iterations=3)  # equal sample budget for every optimizer: N=128 x I=3, H=10
    results = {"budget": {**budget, "horizon": args.horizon}, "table_cost": args.table_cost, "threads": 1, "envs": {}}
    for env_name in args.envs:
        started = time.perf_counter()
        if args.smoke and env_name not in models:
            models[env_name], held_out = smoke_model(env_name, work, args.seed)
        elif env_name in data:
            episodes = load_dataset(data[env_name]).episodes
            held_out = episodes[-max(1, len(episodes) // 10):]
        else:
            held_out = None
        if env_name not in models:
            print(f"{env_name}: no --model {env_name}=RUN given; skipped", file=sys.stderr)
            continue
        run = models[env_name]
        runtime = load_runtime(run, device="cpu")
        row: dict = {"model": run}
        has_readout = (Path(run) / READOUT_DIR).is_dir()
        if held_out is not None:
            readout = load_readout(Path(run) / READOUT_DIR) if has_readout else None
            distance = load_distance(Path(run) / "distance") if (Path(run) / "distance").is_dir() else None
            row["cost_spearman"] = cost_correlations(runtime, distance, held_out,
                                                     env_name, args.pairs, args.seed, readout)
        env = make(env_name, **({"max_steps": args.max_steps} if args.max_steps else {}))

        def success(controller, episodes, decode=None) -> dict:
            summary = evaluate(env, controller, episodes, args.seed, progress=False, decode=decode)
            return {k: summary[k] for k in ("episodes", "success_rate", "success_ci95", "steps_to_success_median",
                                            "step_ms_median", "step_ms_p95")}

        # (b) every optimizer, one cost, equal budget
        row["optimizers"] = {name: success(build_controller(run, name, args.table_cost, seed=args.seed,
                                                            horizon=args.horizon, optimizer_overrides=budget,
                                                            imagine=args.table_imagine)[0],
                                           args.table_episodes or args.episodes) for name in OPTIMIZERS.names()}
        # (c) flat MPC per cost beside random actions and the simulator reference
        # (the readout cost also imagined in the task's state, where the run has a state dynamics)
        has_dynamics = has_readout and (Path(run) / STATE_DYNAMICS_DIR).is_dir()
        # (and with --proprio, once more with the robot's proprioception in the state)
        rows = [(cost, imagine, proprio) for cost in args.costs for imagine in args.imagine
                for proprio in ((False, True) if args.proprio and imagine == "state" else (False,))
                if (cost != "readout" or has_readout) and (imagine == "latent" or (cost == "readout" and has_dynamics))]
        row["costs"] = {cost + ("" if imagine == "latent" else f"+{imagine}") + ("+proprio" if proprio else ""):
                        success(build_controller(run, "cem", cost, seed=args.seed, horizon=args.horizon,
                                                 optimizer_overrides=budget, imagine=imagine, proprio=proprio)[0],
                                args.episodes) for cost, imagine, proprio in rows}
        row["random_actions"] = success(RandomActions(env.action_space.shape[0], args.seed), args.episodes)
        row["simulator_cem"] = success(SimulatorCEM(env, make_optimizer("cem", **budget), args.horizon), args.episodes)
        # (d) plan time per control step at N=128, I=3, H=10
        row["plan_ms_median"] = row["optimizers"]["cem"]["step_ms_median"]
        best = max(row["costs"], key=lambda cost: row["costs"][cost]["success_rate"])
        row["targets"] = {"success": TARGETS.get(env_name), "best_cost": best,
                          "success_met": row["costs"][best]["success_rate"] >= TARGETS.get(env_name, 1.0),
                          "plan_ms_at_most_25": row["plan_ms_median"] <= 25}
        row["wall_s"] = time.perf_counter() - started
        env.close()
        results["envs"][env_name] = row
        print(json.dumps({env_name: row}, indent=1))
        write_results(args.out, args.seed, results)  # after every env: a stopped run keeps what it measured
    return 0


if __name__ == "__main__":
    sys.exit(main())
