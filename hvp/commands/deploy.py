"""hvp deploy: run the latent MPC controller, flat or hierarchical, over an exported model against a robot server
(planner side)."""
from __future__ import annotations

import argparse

from hvp.cli_args import add_imagination_arguments

HELP = ("drive a robot server with latent MPC, flat or under subgoals (--hierarchical), over an ONNX model "
        "(hvp export): handshake, arm, episodes, disarm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", required=True, help="robot server endpoint, e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--model", required=True, help="folder written by hvp export (manifest.json + *.onnx)")
    parser.add_argument("--goal", help="goal image (PNG, the camera's size); default: the robot's goal on reset")
    parser.add_argument("--episodes", type=int, default=1, help="episodes to run; episode i is seeded seed + i")
    parser.add_argument("--seed", type=int, default=0, help="seed of the robot's episodes and the planner")
    parser.add_argument("--max-steps", type=int, default=200, help="control steps per episode at most")
    parser.add_argument("--cost", default="temporal", choices=("temporal", "readout", "latent"),
                        help="temporal: the exported temporal-distance model (hvp train-distance, then hvp export); "
                             "readout: the task's state cost on the exported state readout (hvp train-readout, then "
                             "hvp export); latent: squared latent distance")
    add_imagination_arguments(parser, state_needs="the exported state readout and state dynamics, "
                                                  "hvp train-state-dynamics then hvp export")
    parser.add_argument("--planner", default="cem", help="optimizer: random, cem, icem, mppi, cmaes")
    parser.add_argument("--preset", default="cpu", choices=("debug", "cpu", "gpu"), help="optimizer and MPC sizes")
    parser.add_argument("--horizon", type=int, help="planning horizon H (overrides the preset)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1: fastest for planning, bench/results/runtime.json)")
    parser.add_argument("--hierarchical", action="store_true",
                        help="subgoal chain on top of the latent MPC (needs --subgoals' models, see there)")
    parser.add_argument("--subgoals", default="generated", choices=("generated", "graph"),
                        help="with --hierarchical: generated (the export's subgoal generator and temporal distance: "
                             "hvp train-subgoals and train-distance, then hvp export) or graph (trajectory-graph "
                             "nodes, --graph-nodes)")
    parser.add_argument("--subgoal-count", type=int, default=3, help="generated: K subgoals, 1, 3 or 7")
    parser.add_argument("--graph-nodes", help="graph: node file (default: RUN/graph_nodes.safetensors beside "
                                              "--model RUN/onnx)")
    parser.add_argument("--keys", help="CurveZMQ key folder from `hvp keys` (planner.key_secret, robot.key)")
    parser.add_argument("--insecure-plaintext", action="store_true", help="allow plaintext to a non-loopback robot")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for each reply")
    parser.add_argument("--ttl", type=float, default=0.3, help="seconds after an observation its action may still run")
    parser.add_argument("--record", help="write every episode (actions, applied actions, success, act() times) as JSON")


def _read_goal(path: str, image_shape: tuple[int, int, int]):
    """The --goal PNG as uint8 [h, w, 3]; it must have the camera size the model was trained on."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        goal = np.asarray(image.convert("RGB"), dtype=np.uint8)
    if goal.shape != tuple(image_shape):
        raise ValueError(f"--goal: expected an image of shape {tuple(image_shape)} (the model's camera), "
                         f"{path!r} has {goal.shape}")
    return goal


def run(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from hvp.deploy import (DeployError, check_robot, mpc_controller, onnx_hierarchical, onnx_state_space,
                            planning_cost, run_episodes)
    from hvp.real.client import BridgeTimeout, RobotClient, RobotError
    from hvp.real.keys import ClientCurve
    from hvp.real.onnx_folder import ModelFolderError
    from hvp.real.onnx_runtime import OnnxRuntime

    try:
        runtime = OnnxRuntime(args.model, threads=args.threads)
        if args.imagine == "state":
            if args.cost != "readout" or args.hierarchical:
                raise ValueError("--imagine state plans flat on the task's state cost: use --cost readout without "
                                 f"--hierarchical (got --cost {args.cost}{' --hierarchical' * args.hierarchical})")
            planning_runtime, cost = onnx_state_space(runtime, args.model, args.threads, args.proprio)
        elif args.proprio and not runtime.observes_robot_state:
            raise ValueError("--proprio: proprioception enters the read-out state, so it needs --imagine state (or a "
                             "world model trained with --observe-robot-state)")
        else:
            planning_runtime, cost = runtime, planning_cost(args.cost, args.model, args.threads)
        controller = mpc_controller(planning_runtime, cost, args.planner, args.preset, args.horizon, args.seed,
                                    proprio=args.proprio)
        if args.hierarchical:
            controller = onnx_hierarchical(controller, args.model, args.subgoals, graph_nodes=args.graph_nodes,
                                           count=args.subgoal_count, preset=args.preset, threads=args.threads)
        goal = _read_goal(args.goal, runtime.image_shape) if args.goal else None
        curve = ClientCurve.from_dir(args.keys) if args.keys else None
        robot = RobotClient(args.connect, timeout_s=args.timeout, ttl_s=args.ttl, curve=curve,
                            insecure_plaintext=args.insecure_plaintext)
    except (ModelFolderError, OSError, ValueError) as err:
        raise SystemExit(f"hvp deploy: {err}") from None

    def report(episode) -> None:
        print(f"episode seed {episode.seed}: {episode.steps} steps, success {episode.success}, done {episode.done}, "
              f"act() {1e3 * np.median(episode.act_seconds or [0.0]):.1f} ms median", flush=True)

    with robot:
        try:
            info = robot.handshake(runtime.model_hash)
            check_robot(info, runtime)
            print(f"hvp deploy: connected to {info.name} at {info.control_hz:g} Hz, model {runtime.model_hash[:16]}",
                  flush=True)
            episodes = run_episodes(robot, controller, args.episodes, args.seed, goal, args.max_steps, report)
        except (DeployError, BridgeTimeout, RobotError) as err:
            raise SystemExit(f"hvp deploy: {err}") from None
    if args.record:
        with open(args.record, "w") as handle:
            json.dump({"model_hash": runtime.model_hash, "robot": info.name, "episodes": [e.summary() for e in episodes]},
                      handle)
    print(f"hvp deploy: {sum(e.success for e in episodes)}/{len(episodes)} episodes successful", flush=True)
    return 0
