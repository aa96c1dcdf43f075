"""Decoding untrusted frames into a Message, refusing anything malformed.

Every check raises ProtocolError with a code and a message that names the field,
what was expected and what came. Order matters: sizes before parsing, the header
before the arrays, structure before values, so hostile bytes cost little.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import msgpack
import numpy as np

from hvp.real.protocol import (DTYPES, MAX_ARRAYS, MAX_HEADER_BYTES, MAX_NDIM, PROTOCOL_VERSION, REPLY_TYPES,
                               REQUEST_TYPES, ArraySpec, ErrorCode, Message, ProtocolError, Schema)

_INT64_MAX = 2**63 - 1

# Header fields besides the common ones, per message type: name -> accepted kind.
FIELDS: dict[str, dict[str, str]] = {
    "hello": {"model_hash": "str", "schema": "map?"},
    "reset": {"seed": "int?"},
    "action": {"deadline": "float"},
    "welcome": {"robot": "map", "schema": "map", "limits": "map", "safety": "map", "model_hash": "str"},
    "episode": {"episode": "int"},
    "obs": {"step": "int"},
    "applied": {"info": "map"},
    "error": {"code": "str", "message": "str"},
}
REPLY_FIELDS = {"reply_to": "int", "robot_time": "float"}
COMMON_FIELDS = {"v": "int", "type": "str", "session": "str", "seq": "int", "sent": "float", "arrays": "list"}


def _kind_ok(value: Any, kind: str) -> bool:
    if kind.endswith("?"):
        return value is None or _kind_ok(value, kind[:-1])
    if kind == "int":  # bool is an int in Python, never on the wire
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _INT64_MAX
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, {"str": str, "map": dict, "list": list}[kind])


def check_fields(header: Mapping[str, Any], fields: Mapping[str, str], where: str) -> None:
    for name, kind in fields.items():
        if name not in header:
            raise ProtocolError(ErrorCode.BAD_HEADER, f"{where}: missing field {name!r} ({kind})")
        if not _kind_ok(header[name], kind):
            raise ProtocolError(ErrorCode.BAD_HEADER, f"{where}: field {name!r} expected {kind}, got {header[name]!r:.80}")


def decode(frames: list[bytes], *, replies: bool = False, max_header_bytes: int = MAX_HEADER_BYTES) -> Message:
    """frames (header first) -> Message; `replies` selects which message types are accepted."""
    if not 1 <= len(frames) <= 1 + MAX_ARRAYS:
        raise ProtocolError(ErrorCode.BAD_FRAMES, f"expected 1 to {1 + MAX_ARRAYS} frames, got {len(frames)}")
    raw = frames[0]
    if len(raw) > max_header_bytes:
        raise ProtocolError(ErrorCode.HEADER_TOO_LARGE, f"header: expected at most {max_header_bytes} bytes, got {len(raw)}")
    try:
        header = msgpack.unpackb(raw, raw=False, strict_map_key=True, use_list=True)
    except (ValueError, msgpack.UnpackException) as err:  # msgpack's decode errors all derive from these
        raise ProtocolError(ErrorCode.BAD_HEADER, f"header: expected a msgpack map, got undecodable bytes ({err})") from None
    if not isinstance(header, dict):
        raise ProtocolError(ErrorCode.BAD_HEADER, f"header: expected a msgpack map, got {type(header).__name__}")
    if header.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(ErrorCode.BAD_VERSION, f"v: expected protocol version {PROTOCOL_VERSION}, got {header.get('v')!r:.40}")
    check_fields(header, COMMON_FIELDS, "header")
    kind = header["type"]
    allowed = REPLY_TYPES if replies else REQUEST_TYPES
    if kind not in allowed:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"type: expected one of {sorted(allowed)}, got {kind!r:.40}")
    check_fields(header, {**(REPLY_FIELDS if replies else {}), **FIELDS.get(kind, {})}, kind)
    arrays = _decode_arrays(header["arrays"], frames[1:])
    fields = {k: v for k, v in header.items() if k not in COMMON_FIELDS}
    return Message(kind, header["session"], header["seq"], float(header["sent"]), fields, arrays)


def _decode_arrays(specs: list[Any], frames: list[bytes]) -> dict[str, np.ndarray]:
    if len(specs) != len(frames):
        raise ProtocolError(ErrorCode.BAD_FRAMES, f"arrays: header lists {len(specs)} arrays, got {len(frames)} array frames")
    arrays: dict[str, np.ndarray] = {}
    for index, (spec, frame) in enumerate(zip(specs, frames)):
        where = f"arrays[{index}]"
        if not isinstance(spec, dict):
            raise ProtocolError(ErrorCode.BAD_HEADER, f"{where}: expected a map, got {type(spec).__name__}")
        check_fields(spec, {"name": "str", "dtype": "str", "shape": "list", "nbytes": "int"}, where)
        name, dtype_name, shape = spec["name"], spec["dtype"], spec["shape"]
        if name in arrays:
            raise ProtocolError(ErrorCode.BAD_ARRAY, f"{where}: array name {name!r:.40} appears twice")
        if dtype_name not in DTYPES:
            raise ProtocolError(ErrorCode.BAD_ARRAY, f"{where} {name!r:.40}: dtype expected one of {sorted(DTYPES)}, got {dtype_name!r:.40}")
        if len(shape) > MAX_NDIM or not all(_kind_ok(s, "int") for s in shape):
            raise ProtocolError(ErrorCode.BAD_ARRAY, f"{where} {name!r:.40}: shape expected up to {MAX_NDIM} non-negative ints, got {shape!r:.80}")
        dtype = DTYPES[dtype_name]
        expected = math.prod(shape) * dtype.itemsize
        if spec["nbytes"] != expected or len(frame) != expected:
            raise ProtocolError(ErrorCode.BAD_ARRAY, f"{where} {name!r:.40}: {dtype_name}{shape} needs {expected} bytes; "
                                                     f"nbytes says {spec['nbytes']}, frame has {len(frame)}")
        array = np.frombuffer(frame, dtype=dtype).reshape(shape)
        if dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ProtocolError(ErrorCode.NON_FINITE, f"{where} {name!r:.40}: expected finite values, got NaN or inf")
        arrays[name] = array
    return arrays


def check_schema(arrays: Mapping[str, np.ndarray], schema: Schema, where: str) -> None:
    """The message carries exactly the arrays of `schema`, each with its dtype and shape."""
    if set(arrays) != set(schema):
        raise ProtocolError(ErrorCode.BAD_ARRAY, f"{where}: expected arrays {sorted(schema)}, got {sorted(arrays)}")
    for name, spec in schema.items():
        got = arrays[name]
        if got.dtype != DTYPES[spec.dtype] or got.shape != spec.shape:
            raise ProtocolError(ErrorCode.BAD_ARRAY, f"{where} {name!r}: expected {spec.describe()}, "
                                                     f"got {got.dtype.name}{list(got.shape)}")


def parse_schema(wire: Any, where: str) -> dict[str, dict[str, ArraySpec]]:
    """A schema sent over the wire ({"observation": {...}, "action": {...}}) -> ArraySpecs, validated."""
    if not isinstance(wire, dict) or set(wire) != {"observation", "action"}:
        raise ProtocolError(ErrorCode.BAD_HEADER, f"{where}: expected a map with keys ['action', 'observation'], got {wire!r:.80}")
    parsed: dict[str, dict[str, ArraySpec]] = {}
    for group, specs in wire.items():
        if not isinstance(specs, dict) or len(specs) > MAX_ARRAYS:
            raise ProtocolError(ErrorCode.BAD_HEADER, f"{where}.{group}: expected a map of at most {MAX_ARRAYS} arrays, got {specs!r:.80}")
        parsed[group] = {}
        for name, spec in specs.items():
            if not isinstance(spec, dict):
                raise ProtocolError(ErrorCode.BAD_HEADER, f"{where}.{group}.{name}: expected a map, got {spec!r:.40}")
            check_fields(spec, {"dtype": "str", "shape": "list"}, f"{where}.{group}.{name}")
            shape = spec["shape"]
            if spec["dtype"] not in DTYPES or len(shape) > MAX_NDIM or not all(_kind_ok(s, "int") for s in shape):
                raise ProtocolError(ErrorCode.BAD_HEADER, f"{where}.{group}.{name}: expected a dtype in {sorted(DTYPES)} "
                                                          f"and up to {MAX_NDIM} non-negative ints, got {spec!r:.80}")
            parsed[group][name] = ArraySpec(spec["dtype"], tuple(shape))
    return parsed


def check_limits_wire(limits: Any, action_dim: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The limits map of a welcome reply -> (low float32 [A], high float32 [A], max_delta)."""
    check_fields(limits, {"low": "list", "high": "list", "max_delta": "float"}, "welcome.limits")
    bounds = []
    for key in ("low", "high"):
        values = limits[key]
        if len(values) != action_dim or not all(_kind_ok(v, "float") for v in values):
            raise ProtocolError(ErrorCode.BAD_HEADER, f"welcome.limits.{key}: expected {action_dim} finite numbers, got {values!r:.80}")
        bounds.append(np.asarray(values, dtype=np.float32))
    return bounds[0], bounds[1], float(limits["max_delta"])
