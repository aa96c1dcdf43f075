"""What every benchmark records beside its numbers (the command, the core count, the seed), and how it reads
its NAME=PATH options."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def write_results(out: str | os.PathLike, seed: int, record: dict[str, Any]) -> dict[str, Any]:
    """Write `record` as JSON to `out`, headed by the command that produced it, the cores and the seed."""
    full = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "cores": os.cpu_count(), "seed": seed,
            "load_average_1min": os.getloadavg()[0], **record}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(full, indent=2) + "\n")
    print(f"wrote {out}")
    return full


def named_paths(items: list[str], option: str) -> dict[str, str]:
    """["NAME=PATH", ...] given to `option` -> {NAME: PATH}; exits naming the item that lacks the "="."""
    named = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"{option}: expected NAME=PATH, got {item!r}")
        named[name] = path
    return named
