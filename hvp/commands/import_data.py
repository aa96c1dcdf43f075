"""hvp import-data: a LeRobotDataset v3 folder or a robomimic HDF5 file -> an hvp HDF5 dataset."""
from __future__ import annotations

import argparse

HELP = "import real-robot data (LeRobotDataset v3 folder, robomimic HDF5) into hvp's HDF5 format"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=("lerobot", "robomimic"), help="layout of SOURCE")
    parser.add_argument("source", help="LeRobotDataset v3 folder (meta/, data/, videos/) or robomimic .hdf5 file")
    parser.add_argument("--out", required=True, help="HDF5 dataset to write (must not exist)")
    parser.add_argument("--camera", help="camera to import (observation.images.<cam> / obs/<cam>_image); "
                                         "required when the source has several")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"),
                        help="resize frames to this size (default: --run's model size, else 64 64)")
    parser.add_argument("--run", help="world-model run directory whose image size the frames are resized to")
    parser.add_argument("--action-low", type=float, nargs="+", help="action bounds mapped to -1 (one value or one "
                                                                     "per component); default: stats.json min / -1")
    parser.add_argument("--action-high", type=float, nargs="+", help="action bounds mapped to +1; default: "
                                                                      "stats.json max / +1")


def _image_size(args: argparse.Namespace) -> tuple[int, int]:
    if args.image_size:
        return tuple(args.image_size)
    if args.run:
        from hvp.models.checkpoint import read_config

        return tuple(read_config(args.run)["model"]["image_size"])
    return (64, 64)


def run(args: argparse.Namespace) -> int:
    from hvp.data import DatasetError
    from hvp.importers import import_lerobot, import_robomimic

    reader = import_lerobot if args.format == "lerobot" else import_robomimic
    try:
        count = reader(args.source, args.out, camera=args.camera, image_size=_image_size(args),
                       action_low=args.action_low, action_high=args.action_high)
    except (DatasetError, FileExistsError, ValueError) as err:
        raise SystemExit(f"hvp import-data: {err}") from None
    print(f"hvp import-data: {count} episodes from {args.source} written to {args.out}", flush=True)
    return 0
