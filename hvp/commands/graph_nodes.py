"""hvp graph-nodes: encode a dataset's episodes into the replay-graph nodes a run ships (RUN/graph_nodes.safetensors)."""
from __future__ import annotations

import argparse

HELP = ("encode every STRIDE-th frame of a dataset's whole episodes with a run's world model into "
        "RUN/graph_nodes.safetensors, the nodes of hvp plan --hierarchical --subgoals graph")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory of an rssm world model")
    parser.add_argument("--data", required=True, help="HDF5 of exploration episodes (e.g. the model's training data)")
    parser.add_argument("--stride", type=int, default=3, help="frames between the nodes of an episode")
    parser.add_argument("--size", type=int, default=50_000, help="most nodes M: whole episodes in order up to it")
    parser.add_argument("--float32", action="store_true",
                        help="store float32 latents (default float16: half the file; moves a latent by < 0.01 on "
                             "maze-hard, its shortcut radius is ~3)")
    parser.add_argument("--out", help="node file (default: RUN/graph_nodes.safetensors)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from hvp.data import load_dataset
    from hvp.hierarchy import GRAPH_NODES_FILE, save_graph_nodes, trajectory_nodes
    from hvp.models.runtime import load_runtime

    runtime = load_runtime(args.run, device="cpu", threads=args.threads)
    dataset = load_dataset(args.data)
    nodes = trajectory_nodes(runtime, dataset, args.size, args.stride)
    dtype = np.float32 if args.float32 else np.float16
    nodes = {**nodes, "latents": nodes["latents"].astype(dtype)}
    episodes = len(np.unique(nodes["episodes"]))
    path = save_graph_nodes(args.out or Path(args.run) / GRAPH_NODES_FILE, nodes, args.stride,
                            f"{args.data}: {episodes} of {len(dataset)} episodes, {np.dtype(dtype).name} latents")
    print(f"{len(nodes['latents'])} nodes from {episodes} of {len(dataset)} episodes (stride {args.stride}) -> {path} "
          f"({path.stat().st_size / 1e6:.1f} MB)")
    return 0
