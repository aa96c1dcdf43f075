"""hvp envs: the registered tasks."""
from __future__ import annotations

import argparse

HELP = "list registered tasks: backend, image size, action dim, horizon"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="also build each env and step it once")


def run(args: argparse.Namespace) -> int:
    from hvp.sim import ENVS

    names = ENVS.names()
    width = max(len("task"), *map(len, names)) + 2  # a task name never runs into the next column
    header = f"{'task':<{width}}{'backend':<11}{'image':<9}{'action':>7}{'horizon':>9}"
    print(header)
    print("-" * len(header))
    for name in names:
        info = ENVS.entry(name).info
        line = (f"{name:<{width}}{info.get('backend', '?'):<11}{info.get('image', '?'):<9}"
                f"{info.get('action_dim', '?'):>7}{info.get('horizon', '?'):>9}")
        if args.check:
            line += "  " + _check(name)
        print(line)
    return 0


def _check(name: str) -> str:
    from hvp.registry import MissingBackendError
    from hvp.sim import make

    try:
        env = make(name)
    except MissingBackendError as err:
        return f"unavailable: {err}"
    try:
        env.reset(seed=0)
        env.step(env.action_space.sample())
        return "ok"
    finally:
        env.close()
