"""hvp record: record episodes on a robot server into an hvp HDF5 dataset (planner side, no torch)."""
from __future__ import annotations

import argparse

HELP = "record episodes through the ZMQ bridge (scripted exploration, ONNX planner or replay) into an HDF5 dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", required=True, help="robot server endpoint, e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--out", required=True, help="HDF5 dataset to write (a rerun records only missing episodes)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes to record; episode i is seeded seed + i")
    parser.add_argument("--policy", default="scripted", choices=("scripted", "planner", "replay"),
                        help="scripted: smooth random actions; planner: latent MPC over --model; "
                             "replay: the actions of --replay's episodes")
    parser.add_argument("--model", help="planner: folder written by hvp export")
    parser.add_argument("--cost", default="latent", choices=("temporal", "latent"), help="planner: planning cost")
    parser.add_argument("--planner", default="cem", help="planner: optimizer (random, cem, icem, mppi, cmaes)")
    parser.add_argument("--preset", default="cpu", choices=("debug", "cpu", "gpu"), help="planner: optimizer sizes")
    parser.add_argument("--replay", help="replay: HDF5 dataset whose episodes' actions are sent again")
    parser.add_argument("--seed", type=int, default=0, help="seed of the robot's episodes and the policy")
    parser.add_argument("--max-steps", type=int, default=200, help="control steps per episode at most")
    parser.add_argument("--shift", help="label of the robot's domain shift, stored in env_args (e.g. mild)")
    parser.add_argument("--keys", help="CurveZMQ key folder from `hvp keys` (planner.key_secret, robot.key)")
    parser.add_argument("--insecure-plaintext", action="store_true", help="allow plaintext to a non-loopback robot")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for each reply")
    parser.add_argument("--ttl", type=float, default=0.3, help="seconds after an observation its action may still run")


def _controller(args: argparse.Namespace):
    """-> (controller, model hash to present in the handshake, runtime or None)."""
    from hvp.record import ReplayController

    if args.policy == "planner":
        if not args.model:
            raise ValueError("--model: the planner policy needs an exported model folder (hvp export)")
        from hvp.deploy import mpc_controller, planning_cost
        from hvp.real.onnx_runtime import OnnxRuntime

        runtime = OnnxRuntime(args.model)
        controller = mpc_controller(runtime, planning_cost(args.cost, args.model), args.planner, args.preset,
                                    seed=args.seed)
        return controller, runtime.model_hash, runtime
    if args.policy == "replay":
        if not args.replay:
            raise ValueError("--replay: the replay policy needs an HDF5 dataset to take actions from")
        return ReplayController.from_dataset(args.replay), "", None
    return None, "", None  # scripted: built once the robot has told its action size


def run(args: argparse.Namespace) -> int:
    from hvp.data import DatasetError
    from hvp.deploy import DeployError, check_robot
    from hvp.real.client import BridgeTimeout, RobotClient, RobotError
    from hvp.real.keys import ClientCurve
    from hvp.real.onnx_folder import ModelFolderError
    from hvp.record import ExplorationController, record

    try:
        controller, model_hash, runtime = _controller(args)
        curve = ClientCurve.from_dir(args.keys) if args.keys else None
        robot = RobotClient(args.connect, timeout_s=args.timeout, ttl_s=args.ttl, curve=curve,
                            insecure_plaintext=args.insecure_plaintext)
    except (DatasetError, ModelFolderError, OSError, ValueError) as err:
        raise SystemExit(f"hvp record: {err}") from None

    def report(episode) -> None:
        print(f"episode {episode.index} (seed {episode.seed}): {episode.frames} frames, success {episode.success}",
              flush=True)

    with robot:
        try:
            info = robot.handshake(model_hash)
            if runtime is not None:
                check_robot(info, runtime)
            controller = controller or ExplorationController(info.action_dim)
            print(f"hvp record: connected to {info.name} at {info.control_hz:g} Hz, policy {args.policy}", flush=True)
            recorded = record(robot, controller, args.out, args.episodes, seed=args.seed, max_steps=args.max_steps,
                              policy=args.policy, shift=args.shift, on_episode=report)
        except (DeployError, BridgeTimeout, RobotError, ValueError) as err:
            raise SystemExit(f"hvp record: {err}") from None
    print(f"hvp record: {len(recorded)} episodes recorded now, dataset {args.out}", flush=True)
    return 0
