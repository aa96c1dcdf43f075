"""Socket plumbing both bridge ends share: options, the plaintext rule, bounded receives."""
from __future__ import annotations

import zmq

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def is_local(address: str) -> bool:
    """Whether a ZMQ endpoint stays on this machine (loopback tcp, ipc, inproc)."""
    scheme, _, rest = address.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    return rest.rsplit(":", 1)[0] in LOCAL_HOSTS


def require_secure(address: str, curve: object | None, insecure_plaintext: bool, argument: str) -> None:
    """Plaintext only on loopback unless forced: anyone on the network could otherwise move the robot."""
    if curve is None and not insecure_plaintext and not is_local(address):
        raise ValueError(f"{argument}: {address!r} is not loopback; expected CURVE keys (--keys DIR from `hvp keys`) "
                         f"or an explicit --insecure-plaintext")


def configure(socket: zmq.Socket, max_message_bytes: int) -> None:
    socket.linger = 0  # never block close() on unsent messages to a vanished peer
    socket.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)  # libzmq drops the peer of any larger frame


def recv_bounded(socket: zmq.Socket, max_frames: int) -> tuple[list[bytes], bool]:
    """Receive one multipart message without blocking, keeping at most max_frames frames.

    A peer may send millions of frames in one message; the extra ones are read and
    dropped so they cost no memory. Returns (frames, whether frames were dropped).
    """
    frames: list[bytes] = []
    dropped = False
    while True:
        frame = socket.recv(zmq.NOBLOCK)
        if len(frames) < max_frames:
            frames.append(frame)
        else:
            dropped = True
        if not socket.getsockopt(zmq.RCVMORE):
            return frames, dropped
