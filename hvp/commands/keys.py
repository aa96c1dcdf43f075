"""hvp keys: CurveZMQ key pairs for the robot bridge."""
from __future__ import annotations

import argparse

HELP = "generate CurveZMQ key pairs for the robot server and planners (robot.key*, planner.key*, authorized/)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder to write the key files into")
    parser.add_argument("--client", action="append", default=None,
                        help="name of a client key pair to create and authorize (repeatable; default: planner)")
    parser.add_argument("--force", action="store_true", help="overwrite existing key files")


def run(args: argparse.Namespace) -> int:
    from hvp.real.keys import generate_keys

    clients = tuple(args.client or ["planner"])
    try:
        written = generate_keys(args.out, clients, overwrite=args.force)
    except (ValueError, FileExistsError) as err:
        raise SystemExit(str(err)) from None
    for path in written:
        print(path)
    print(f"robot:   hvp robot-server ... --keys {args.out}   (needs robot.key_secret and authorized/)")
    print(f"planner: needs {clients[0]}.key_secret and robot.key; keep *.key_secret files private")
    return 0
