"""The hvp robot bridge wire format: constants, message types, error codes, encoding.

A message is a ZMQ multipart message: one msgpack header frame followed by one raw
frame per array the header lists (docs/protocol.md is the full specification).
Nothing is pickled. Decoding untrusted bytes lives in hvp.real.validation.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

import msgpack
import numpy as np

PROTOCOL_VERSION = 1
MAX_HEADER_BYTES = 4096
MAX_ARRAYS = 4
MAX_NDIM = 4

# Requests (planner -> robot) and the reply type each one gets on success.
REPLY_TO_REQUEST = {
    "hello": "welcome",
    "arm": "armed",
    "disarm": "disarmed",
    "reset": "episode",
    "get_obs": "obs",
    "action": "applied",
    "heartbeat": "heartbeat",
}
REQUEST_TYPES = frozenset(REPLY_TO_REQUEST)
REPLY_TYPES = frozenset(REPLY_TO_REQUEST.values()) | {"error"}

# Wire dtype names; every array is little-endian and C-contiguous.
DTYPES = {"uint8": np.dtype("<u1"), "int32": np.dtype("<i4"), "float32": np.dtype("<f4"), "float64": np.dtype("<f8")}


class ErrorCode:
    """Stable error codes carried by `error` replies (docs/protocol.md lists their meaning)."""

    BAD_FRAMES = "bad_frames"
    HEADER_TOO_LARGE = "header_too_large"
    BAD_HEADER = "bad_header"
    BAD_VERSION = "bad_version"
    UNKNOWN_TYPE = "unknown_type"
    BAD_ARRAY = "bad_array"
    NON_FINITE = "non_finite"
    OUT_OF_RANGE = "out_of_range"
    NO_SESSION = "no_session"
    BUSY = "busy"
    SCHEMA_MISMATCH = "schema_mismatch"
    MODEL_MISMATCH = "model_mismatch"
    NOT_ARMED = "not_armed"
    ARMED = "armed"
    STALE = "stale"
    BAD_DEADLINE = "bad_deadline"
    OUT_OF_ORDER = "out_of_order"
    EPISODE_OVER = "episode_over"
    UNSUPPORTED = "unsupported"
    DRIVER_ERROR = "driver_error"


class ProtocolError(Exception):
    """A message was refused; `code` is one of ErrorCode, `message` says what was expected and what came."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ArraySpec:
    """dtype (a key of DTYPES) and shape of one array in a schema."""

    dtype: str
    shape: tuple[int, ...]

    def to_wire(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape)}

    def describe(self) -> str:
        return f"{self.dtype}{list(self.shape)}"


Schema = Mapping[str, ArraySpec]  # array name -> spec


def robot_schema(image_shape: tuple[int, int, int], state_dim: int, action_dim: int) -> dict[str, Any]:
    """The observation/action schema both sides compare in the handshake."""
    return {
        "observation": {"image": ArraySpec("uint8", tuple(image_shape)), "state": ArraySpec("float32", (state_dim,))},
        "action": {"action": ArraySpec("float32", (action_dim,))},
    }


def schema_to_wire(schema: Mapping[str, Schema]) -> dict[str, Any]:
    return {group: {name: spec.to_wire() for name, spec in specs.items()} for group, specs in schema.items()}


@dataclass(frozen=True)
class Message:
    """A decoded message: header fields, plus arrays by name (read-only numpy views)."""

    type: str
    session: str
    seq: int
    sent: float
    fields: Mapping[str, Any]
    arrays: Mapping[str, np.ndarray]


def encode(kind: str, session: str, seq: int, fields: Mapping[str, Any] | None = None,
           arrays: Mapping[str, np.ndarray] | None = None) -> list[Any]:
    """Frames of one message: [header bytes, array buffers...]; arrays go raw, little-endian, C order."""
    payload = []
    specs = []
    for name, array in (arrays or {}).items():
        wire_name = next((n for n, d in DTYPES.items() if d == array.dtype.newbyteorder("<")), None)
        if wire_name is None:
            raise TypeError(f"array {name!r}: dtype {array.dtype} is not sendable; expected one of {sorted(DTYPES)}")
        contiguous = np.ascontiguousarray(array, dtype=DTYPES[wire_name])
        specs.append({"name": name, "dtype": wire_name, "shape": list(contiguous.shape), "nbytes": contiguous.nbytes})
        payload.append(contiguous)
    header = {"v": PROTOCOL_VERSION, "type": kind, "session": session, "seq": int(seq), "sent": time.time(),
              **(fields or {}), "arrays": specs}
    return [msgpack.packb(header, use_bin_type=True), *payload]
