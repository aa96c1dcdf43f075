"""What every benchmark records beside its numbers: the command, the core count, the seed."""
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
