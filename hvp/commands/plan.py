"""hvp plan: closed-loop latent MPC toward goal images, graded over seeded episodes."""
from __future__ import annotations

import argparse

from hvp.cli_args import add_imagination_arguments

HELP = "plan to goal images with latent MPC (or random actions) over seeded episodes: success, timing, videos"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", required=True, help="registered env (hvp envs), e.g. maze-easy")
    parser.add_argument("--model", required=True, help="run directory of an rssm world model")
    parser.add_argument("--planner", default="cem",
                        help="optimizer (random, cem, icem, mppi, cmaes) or random-actions (baseline)")
    parser.add_argument("--cost", default="temporal",
                        help="latent | temporal (needs MODEL/distance) | pixel | readout (needs MODEL/readout)")
    parser.add_argument("--readout", help="state readout folder for --cost readout (default: MODEL/readout)")
    add_imagination_arguments(parser, state_needs="MODEL/state_dynamics from hvp train-state-dynamics")
    parser.add_argument("--state-dynamics", help="state dynamics folder for --imagine state "
                                                 "(default: MODEL/state_dynamics)")
    parser.add_argument("--distance", help="temporal-distance folder (default: MODEL/distance)")
    parser.add_argument("--reachability", help="hierarchical: the high level's distance, refined on controller "
                                               "outcomes (hvp refine-reachability; default: --distance)")
    parser.add_argument("--preset", default="cpu", choices=("debug", "cpu", "gpu"), help="optimizer and MPC sizes")
    parser.add_argument("--horizon", type=int, help="planning horizon H (overrides the preset)")
    parser.add_argument("--population", type=int, help="samples per iteration N (overrides the preset)")
    parser.add_argument("--iterations", type=int, help="optimizer iterations I (overrides the preset)")
    parser.add_argument("--gradient-steps", type=int, default=0,
                        help="flat MPC: Adam steps polishing each plan through the model's gradients (0: off)")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0, help="episode i is seeded seed + i (env and planner)")
    parser.add_argument("--max-steps", type=int, help="episode length limit (default: the env's)")
    parser.add_argument("--videos", type=int, default=3, help="episodes written as MP4 (reality | imagined | goal)")
    parser.add_argument("--out", help="output folder (default: MODEL/plan_PLANNER_COST)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, ...")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default 1: fastest for planning, bench/results/runtime.json)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    hierarchy = parser.add_argument_group("hierarchical planning (needs MODEL/distance; generated: MODEL/subgoals)")
    hierarchy.add_argument("--hierarchical", action="store_true",
                           help="subgoal chain on top of the latent MPC; writes strip_NNN.png per episode")
    hierarchy.add_argument("--subgoals", default="generated", choices=("generated", "graph", "oracle", "none"),
                           help="generated (CVAE + search), graph (shortest path over dataset episodes), "
                                "oracle (shortest-path frames, maze only), none (flat)")
    hierarchy.add_argument("--subgoal-count", type=int, default=3, help="K subgoals: 1, 3 or 7")
    hierarchy.add_argument("--subgoals-dir", help="subgoal generator folder (default: MODEL/subgoals)")
    hierarchy.add_argument("--chain-cost", choices=("max", "sum"), help="segment reduction (default sum; --hvf max)")
    hierarchy.add_argument("--graph-data", help="graph: HDF5 whose frames are the nodes "
                                                "(default: MODEL/graph_nodes.safetensors)")
    hierarchy.add_argument("--graph-size", type=int, help="graph: most nodes M from --graph-data (default 50000)")
    hierarchy.add_argument("--graph-stride", type=int, help="graph: frames between nodes of --graph-data (default 3)")
    hierarchy.add_argument("--shortcut-quantile", type=float,
                           help="graph: shortcuts between nodes closer than this quantile of consecutive nodes' "
                                "latent distances (default 0.5); use with --cost latent")
    hierarchy.add_argument("--join-quantile", type=float,
                           help="graph: start and goal join nodes closer than this quantile (default 0.75)")
    hierarchy.add_argument("--waypoint-spacing", type=float,
                           help="graph: steps along the path between waypoints (default 3)")
    hierarchy.add_argument("--hvf", action="store_true", help="HVF settings: max chain cost, no replanning or skips")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hvp.agent import build_controller, evaluate, state_frames
    from hvp.sim import make

    overrides = {k: v for k, v in (("population", args.population), ("iterations", args.iterations)) if v is not None}
    if args.hierarchical:
        if args.imagine != "latent" or args.proprio:
            raise SystemExit("hvp plan: --hierarchical plans subgoals in the world model's latent; it takes neither "
                             "--imagine state nor --proprio")
        return run_hierarchical(args)
    controller, decode = build_controller(args.model, args.planner, args.cost, preset=args.preset,
                                          horizon=args.horizon, seed=args.seed, device=args.device,
                                          threads=args.threads, distance_dir=args.distance,
                                          optimizer_overrides=overrides, gradient_steps=args.gradient_steps,
                                          readout_dir=args.readout, imagine=args.imagine,
                                          dynamics_dir=args.state_dynamics, proprio=args.proprio)
    env = make(args.env, **({"max_steps": args.max_steps} if args.max_steps else {}))
    if args.imagine == "state" and hasattr(controller, "runtime"):  # the imagined states, drawn by the simulator
        decode = state_frames(env, controller.runtime.latent_dim)
    imagined = ("" if args.imagine == "latent" else f"_{args.imagine}") + ("_proprio" if args.proprio else "")
    out = Path(args.out or Path(args.model) / f"plan_{args.planner}_{args.cost}{imagined}")
    meta = {"env": args.env, "model": args.model, "planner": args.planner, "cost": args.cost, "preset": args.preset,
            **overrides, "horizon": args.horizon, "gradient_steps": args.gradient_steps, "imagine": args.imagine,
            "proprio": args.proprio}
    try:
        summary = evaluate(env, controller, args.episodes, args.seed, out, args.videos, decode,
                           progress=not args.no_progress, meta=meta)
    finally:
        env.close()
    report(args.env, f"{args.planner}/{args.cost}", summary, out)
    return 0


def report(env: str, label: str, summary: dict, out) -> None:
    low, high = summary["success_ci95"]
    steps = summary["steps_to_success_median"]
    print(f"{env} {label}: success {summary['successes']}/{summary['episodes']} "
          f"= {summary['success_rate']:.0%} (95% CI {low:.0%}-{high:.0%}), median steps to success "
          f"{'-' if steps is None else f'{steps:.0f}'}, act() per step {summary['step_ms_median']:.1f} ms median "
          f"/ {summary['step_ms_p95']:.1f} ms p95; written to {out}")


def run_hierarchical(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hvp.agent import evaluate
    from hvp.hierarchy import OracleSubgoals, build_hierarchical, subgoal_strip
    from hvp.sim import make

    controller, decode = build_hierarchical(args.model, args.subgoals, count=args.subgoal_count, hvf=args.hvf,
                                            planner=args.planner, cost=args.cost, preset=args.preset,
                                            distance_dir=args.distance, subgoals_dir=args.subgoals_dir,
                                            reachability_dir=args.reachability,
                                            seed=args.seed, threads=args.threads, chain_cost=args.chain_cost,
                                            graph_data=args.graph_data, **graph_options(args))
    env = make(args.env, **({"max_steps": args.max_steps} if args.max_steps else {}))
    if args.subgoals == "oracle":
        controller = OracleSubgoals(controller, env, args.subgoal_count)
    label = f"hierarchical-{args.subgoals}{'-hvf' if args.hvf else ''}"
    out = Path(args.out or Path(args.model) / f"plan_{label}")
    strip = lambda index: (lambda start, goal, final, state: subgoal_strip(  # noqa: E731
        start, goal, final, state, decode, out / f"strip_{index:03d}.png"))
    meta = {"env": args.env, "model": args.model, "planner": args.planner, "cost": args.cost, "preset": args.preset,
            "subgoals": args.subgoals, "subgoal_count": args.subgoal_count, "hvf": args.hvf,
            "graph_data": args.graph_data, **graph_options(args)}
    try:
        summary = evaluate(env, controller, args.episodes, args.seed, out, args.videos, decode,
                           progress=not args.no_progress, meta=meta, on_end=strip)
    finally:
        env.close()
    report(args.env, label, summary, out)
    return 0


def graph_options(args: argparse.Namespace) -> dict:
    """The replay-graph flags that were given, as build_hierarchical keywords (unset ones keep its defaults)."""
    given = (("graph_size", args.graph_size), ("graph_stride", args.graph_stride))
    fields = (("shortcut_quantile", args.shortcut_quantile), ("join_quantile", args.join_quantile),
              ("waypoint_spacing", args.waypoint_spacing))
    graph_config = {name: value for name, value in fields if value is not None}
    return {**{name: value for name, value in given if value is not None},
            **({"graph_config": graph_config} if graph_config else {})}
