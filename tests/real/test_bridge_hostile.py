"""Thousands of malformed messages at a live, armed robot server: it answers with errors or drops, and never moves."""
import socket

import msgpack
import numpy as np
import zmq

from conftest import serving
from hvp.real.client import RobotClient
from hvp.real.protocol import PROTOCOL_VERSION, ErrorCode, encode
from hvp.real.validation import decode


def exchange(sock, frames, timeout_ms=1000):
    """Send raw frames, return the decoded reply, or None if the robot stayed silent."""
    sock.send_multipart([bytes(f) for f in frames])
    if not sock.poll(timeout_ms):
        return None
    return decode(sock.recv_multipart(), replies=True)


def hostile_messages(rng, session, seq, deadline):
    """(frames, expected error codes) cases aimed at an armed session; `seq` is the last applied action's."""
    good_action = np.array([0.1, 0.1], np.float32)

    def action(array=good_action, number=seq + 1, **header):
        frames = encode("action", session, number, {"deadline": deadline}, {"action": array})
        if header:
            frames[0] = msgpack.packb({**msgpack.unpackb(frames[0]), **header})
        return frames

    base = action()
    return [
        (action(np.array([np.nan, 0], np.float32)), {ErrorCode.NON_FINITE}),
        (action(np.array([0, np.inf], np.float32)), {ErrorCode.NON_FINITE}),
        (action(np.array([0.1, 0.1])), {ErrorCode.BAD_ARRAY}),  # float64
        (action(np.array([0.1, 0.1, 0.1], np.float32)), {ErrorCode.BAD_ARRAY}),
        (action(np.array([[0.1, 0.1]], np.float32)), {ErrorCode.BAD_ARRAY}),
        (action(np.array([1e6, 0], np.float32)), {ErrorCode.OUT_OF_RANGE}),
        (action(number=seq), {ErrorCode.OUT_OF_ORDER}),  # replayed
        (action(deadline=deadline - 10.0), {ErrorCode.STALE}),
        (action(deadline=deadline + 100.0), {ErrorCode.BAD_DEADLINE}),
        (action(v=PROTOCOL_VERSION + 1), {ErrorCode.BAD_VERSION}),
        (action(session="0" * 32), {ErrorCode.NO_SESSION}),
        (action(type="teleport"), {ErrorCode.UNKNOWN_TYPE}),
        (action(seq=True), {ErrorCode.BAD_HEADER}),
        ([base[0], bytes(base[1])[:5]], {ErrorCode.BAD_ARRAY}),  # truncated array frame
        ([base[0][: int(rng.integers(1, len(base[0])))], base[1]], {ErrorCode.BAD_HEADER, ErrorCode.BAD_VERSION}),
        (base[:1], {ErrorCode.BAD_FRAMES}),
        ([*base, base[1]], {ErrorCode.BAD_FRAMES}),
        ([base[0]] + [base[1]] * 9, {ErrorCode.BAD_FRAMES}),
        ([rng.bytes(int(rng.integers(0, 200)))], None),  # random bytes: some error, never a move
        ([rng.bytes(int(rng.integers(0, 50))) for _ in range(int(rng.integers(1, 6)))], None),
    ]


def test_server_survives_thousands_of_malformed_messages_and_never_moves_on_them(maze_driver):
    rng = np.random.default_rng(0)
    with serving(maze_driver) as (server, events):
        with RobotClient(server.endpoint) as robot:
            robot.handshake()
            robot.arm()
            robot.get_obs()
            robot.send_action(np.array([0.1, 0.1], np.float32))
            applied_seq = robot._seq
            assert len(maze_driver.executed) == 1
            owner = robot.socket  # the owner's own identity: the worst case, it holds the session
            stranger = robot.context.socket(zmq.DEALER)
            stranger.linger = 0
            stranger.connect(server.endpoint)
            refusals = 0
            for round_ in range(150):
                robot.heartbeat()  # valid traffic keeps the robot armed while the garbage flows
                deadline = robot._robot_time + 0.5
                for frames, codes in hostile_messages(rng, robot.robot.session, applied_seq, deadline):
                    for sock in (owner, stranger) if round_ % 10 == 0 else (owner,):
                        reply = exchange(sock, frames)
                        assert reply is not None and reply.type == "error", frames
                        if sock is owner and codes is not None:
                            # on a loaded machine a round can outlive its deadline: then stale is checked first
                            late = reply.fields.get("robot_time", -np.inf) > deadline
                            assert reply.fields["code"] in codes or (late and reply.fields["code"] == ErrorCode.STALE), (
                                reply.fields, frames)
                        refusals += 1
            assert refusals >= 3000
            assert len(maze_driver.executed) == 1 and server.gate.armed

            # Oversize frames and raw TCP garbage: dropped at the transport, no reply, no move.
            stranger.send(b"x" * (1 << 20))
            assert not stranger.poll(200)
            host, port = server.endpoint.removeprefix("tcp://").rsplit(":", 1)
            for _ in range(20):
                with socket.create_connection((host, int(port)), timeout=1) as raw:
                    raw.sendall(rng.bytes(512))

            # Still serving, and the next valid action moves the robot exactly once.
            robot.get_obs()
            applied = robot.send_action(np.array([0.2, 0.2], np.float32))
            np.testing.assert_allclose(applied.action, [0.2, 0.2])
            stranger.close()
    assert len(maze_driver.executed) == 2
    assert sum(e["event"] == "applied" for e in events) == 2
    # Raw garbage can parse as a legacy ZMTP 1.0 stream and reach the server: more refusals, never a move.
    assert sum(e["event"] == "reject" for e in events) >= refusals
