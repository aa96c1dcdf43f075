"""Decoding untrusted frames: every malformation is a ProtocolError with the right code, nothing else."""
import msgpack
import numpy as np
import pytest

from hvp.real.protocol import PROTOCOL_VERSION, ErrorCode, ProtocolError, encode, robot_schema, schema_to_wire
from hvp.real.validation import check_schema, decode, parse_schema

ACTION = {"action": np.array([0.5, -0.25], np.float32)}


def header_of(frames):
    return msgpack.unpackb(frames[0])


def with_header(frames, **changes):
    header = {**header_of(frames), **changes}
    return [msgpack.packb(header), *frames[1:]]


def code_of(frames, replies=False):
    with pytest.raises(ProtocolError) as info:
        decode([bytes(f) for f in frames], replies=replies)
    return info.value.code


def test_round_trip_keeps_fields_and_arrays():
    frames = encode("action", "s" * 32, 7, {"deadline": 12.5}, ACTION)
    message = decode([bytes(f) for f in frames])
    assert (message.type, message.session, message.seq, message.fields["deadline"]) == ("action", "s" * 32, 7, 12.5)
    np.testing.assert_array_equal(message.arrays["action"], ACTION["action"])
    assert message.arrays["action"].dtype == np.float32


def test_each_malformation_has_its_code():
    good = encode("action", "s", 1, {"deadline": 1.0}, ACTION)
    action_bytes = bytes(good[1])
    nan = np.array([np.nan, 0], np.float32).tobytes()
    cases = {
        ErrorCode.BAD_FRAMES: [[], [*good, action_bytes], good[:1], [good[0]] + [action_bytes] * 6],
        ErrorCode.HEADER_TOO_LARGE: [[b"\x81" + b"a" * 5000]],
        ErrorCode.BAD_HEADER: [[good[0][:-3], action_bytes], [b"\xc1"], [msgpack.packb([1, 2])], [msgpack.packb(7)],
                               with_header(good, seq=True), with_header(good, seq=-1), with_header(good, seq="1"),
                               with_header(good, deadline=float("nan")), with_header(good, session=None),
                               with_header(good, arrays=[7])],
        ErrorCode.BAD_VERSION: [with_header(good, v=PROTOCOL_VERSION + 1), with_header(good, v="1")],
        ErrorCode.UNKNOWN_TYPE: [with_header(good, type="fire"), with_header(good, type="welcome")],
        ErrorCode.BAD_ARRAY: [
            [good[0], action_bytes[:-1]],
            with_header(good, arrays=[{"name": "action", "dtype": "float16", "shape": [2], "nbytes": 8}]),
            with_header(good, arrays=[{"name": "action", "dtype": "float32", "shape": [3], "nbytes": 12}]),
            with_header(good, arrays=[{"name": "action", "dtype": "float32", "shape": [1, 1, 1, 1, 2], "nbytes": 8}]),
            with_header(good, arrays=[{"name": "action", "dtype": "object", "shape": [2], "nbytes": 8}]),
        ],
        ErrorCode.NON_FINITE: [[good[0], nan]],
    }
    for code, frame_lists in cases.items():
        for frames in frame_lists:
            assert code_of(frames) == code, frames


def test_schema_check_names_expected_and_got():
    schema = robot_schema((64, 64, 3), 4, 2)
    with pytest.raises(ProtocolError, match=r"expected float32\[2\], got float64\[2\]"):
        check_schema({"action": np.zeros(2)}, schema["action"], "action")
    assert parse_schema(schema_to_wire(schema), "s") == schema
    with pytest.raises(ProtocolError):
        parse_schema({"observation": {"image": {"dtype": "uint8", "shape": [-1]}}, "action": {}}, "s")


def test_random_and_mutated_bytes_only_ever_raise_protocol_errors():
    rng = np.random.default_rng(0)
    good = [bytes(f) for f in encode("action", "s", 1, {"deadline": 1.0}, ACTION)]
    refused = 0
    for trial in range(3000):
        if trial % 3 == 0:
            frames = [rng.bytes(int(rng.integers(0, 64))) for _ in range(int(rng.integers(1, 4)))]
        else:  # flip bytes of a valid header: mostly still msgpack, wrong in subtle ways
            header = bytearray(good[0])
            for index in rng.integers(0, len(header), size=int(rng.integers(1, 4))):
                header[index] = int(rng.integers(0, 256))
            frames = [bytes(header), good[1]]
        try:
            decode(frames)
        except ProtocolError:
            refused += 1
    assert refused > 2000  # most mutations are caught; none escapes as another exception type
