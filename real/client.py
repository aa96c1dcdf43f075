"""The planner side of the bridge: RobotClient connects to a robot server.

    with RobotClient("tcp://127.0.0.1:5555") as robot:
        info = robot.handshake(model_hash, robot_schema((64, 64, 3), 4, 2))
        goal = robot.reset(seed=0)          # only while disarmed
        robot.arm()
        obs = robot.get_obs()               # {"image": uint8 [h, w, 3], "state": float32 [S]}
        applied = robot.send_action(action) # Applied(action float32 [A], info, robot_time)
        robot.disarm()

Every request waits at most `timeout_s` (the handshake `handshake_timeout_s`: a failed
CURVE handshake looks like silence) and raises BridgeTimeout; a refusal raises
RobotError with the robot's error code. Late replies to timed-out requests are dropped.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import zmq

from hvp.contracts import ActionLimits, check_array
from hvp.real.keys import ClientCurve
from hvp.real.protocol import (MAX_ARRAYS, REPLY_TO_REQUEST, ArraySpec, ErrorCode, Message, ProtocolError, encode,
                               schema_to_wire)
from hvp.real.transport import configure, recv_bounded, require_secure
from hvp.real.validation import check_fields, check_limits_wire, check_schema, decode, parse_schema


class RobotError(ProtocolError):
    """The robot refused a request; `code` is one of hvp.real.protocol.ErrorCode."""


class BridgeTimeout(TimeoutError):
    """No valid reply came in time: robot down, network gone, or a failed CURVE handshake."""


@dataclass(frozen=True)
class RobotInfo:
    """What the robot reported in the handshake."""

    session: str
    name: str
    control_hz: float
    image_shape: tuple[int, int, int]
    state_dim: int
    action_dim: int
    limits: ActionLimits
    schema: Mapping[str, Mapping[str, ArraySpec]]
    safety: Mapping[str, float]  # hold_after_s, disarm_after_s, max_ttl_s, range_margin
    metadata: Mapping[str, Any]  # everything the driver reported


@dataclass(frozen=True)
class Applied:
    """The robot's echo of an action: what it applied after clipping, and the episode's info."""

    action: np.ndarray  # float32 [A]
    info: Mapping[str, Any]  # e.g. {"step": int, "success": bool, "done": bool} from episodic drivers
    robot_time: float  # robot clock (monotonic seconds) when the reply was sent


class RobotClient:
    """A DEALER socket to one robot server; one request in flight at a time."""

    def __init__(self, address: str, *, timeout_s: float = 1.0, handshake_timeout_s: float = 3.0, ttl_s: float = 0.3,
                 curve: ClientCurve | None = None, insecure_plaintext: bool = False,
                 max_message_bytes: int = 64 << 20) -> None:
        require_secure(address, curve, insecure_plaintext, "address")
        for name, value in (("timeout_s", timeout_s), ("handshake_timeout_s", handshake_timeout_s), ("ttl_s", ttl_s)):
            if not value > 0:
                raise ValueError(f"{name}: expected > 0 seconds, got {value}")
        self.address = address
        self.timeout_s, self.handshake_timeout_s, self.ttl_s = timeout_s, handshake_timeout_s, ttl_s
        self.robot: RobotInfo | None = None
        self.obs_time: float | None = None  # robot time of the last observation (actions expire relative to it)
        self._robot_time = 0.0
        self._seq = 0
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        configure(self.socket, max_message_bytes)
        self.socket.immediate = True  # queue nothing for a peer whose (CURVE) handshake has not completed
        if curve is not None:
            curve.apply(self.socket)
        self.socket.connect(address)

    # -- requests -----------------------------------------------------------------------
    def handshake(self, model_hash: str = "", schema: Mapping[str, Mapping[str, ArraySpec]] | None = None) -> RobotInfo:
        """Check protocol version, model hash and schema with the robot; returns its metadata."""
        wire_schema = None if schema is None else schema_to_wire(schema)
        reply = self._request("hello", {"model_hash": model_hash, "schema": wire_schema}, timeout_s=self.handshake_timeout_s)
        fields = reply.fields
        robot = fields["robot"]
        check_fields(robot, {"name": "str", "control_hz": "float", "image_shape": "list", "state_dim": "int",
                             "action_dim": "int"}, "welcome.robot")
        low, high, max_delta = check_limits_wire(fields["limits"], robot["action_dim"])
        self.robot = RobotInfo(
            session=reply.session, name=robot["name"], control_hz=float(robot["control_hz"]),
            image_shape=tuple(robot["image_shape"]), state_dim=robot["state_dim"], action_dim=robot["action_dim"],
            limits=ActionLimits(low, high, max_delta), schema=parse_schema(fields["schema"], "welcome.schema"),
            safety=dict(fields["safety"]), metadata=robot)
        return self.robot

    def arm(self) -> None:
        self._request("arm")

    def disarm(self) -> None:
        self._request("disarm")

    def heartbeat(self) -> None:
        """Keeps an armed robot from disarming while no actions are sent (it still holds its pose)."""
        self._request("heartbeat")

    def reset(self, seed: int | None = None) -> np.ndarray | None:
        """Start a new episode (robot must be disarmed); returns the goal image uint8 [h, w, 3] or None."""
        reply = self._request("reset", {"seed": seed})
        goal = reply.arrays.get("goal_image")
        if goal is not None:
            check_schema({"goal_image": goal}, {"goal_image": self._info().schema["observation"]["image"]}, "episode")
        return None if goal is None else goal.copy()

    def get_obs(self) -> dict[str, np.ndarray]:
        """{"image": uint8 [h, w, 3], "state": float32 [S]}, checked against the robot's schema."""
        reply = self._request("get_obs")
        check_schema(reply.arrays, self._info().schema["observation"], "obs")
        self.obs_time = reply.fields["robot_time"]
        return {name: array.copy() for name, array in reply.arrays.items()}

    def send_action(self, action: np.ndarray, ttl_s: float | None = None) -> Applied:
        """Send float32 [A]; it expires `ttl_s` after the last observation's robot time (stale plans never run)."""
        info = self._info()
        action = check_array("action", np.asarray(action, dtype=np.float32), (info.action_dim,), np.float32)
        since = self.obs_time if self.obs_time is not None else self._robot_time
        reply = self._request("action", {"deadline": since + (ttl_s or self.ttl_s)}, {"action": action})
        check_schema(reply.arrays, info.schema["action"], "applied")
        return Applied(reply.arrays["action"].copy(), dict(reply.fields["info"]), reply.fields["robot_time"])

    # -- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        self.context.destroy(linger=0)  # the context is ours alone: close every socket made from it

    def __enter__(self) -> "RobotClient":
        return self

    def __exit__(self, *exc: object) -> None:
        try:  # best effort: if the robot cannot hear us, its own watchdog disarms it within a second
            if self.robot is not None:
                self.disarm()
        except (BridgeTimeout, RobotError):
            pass
        finally:
            self.close()

    # -- plumbing -----------------------------------------------------------------------
    def _info(self) -> RobotInfo:
        if self.robot is None:
            raise RuntimeError("RobotClient: call handshake() before this request")
        return self.robot

    def _request(self, kind: str, fields: Mapping[str, Any] | None = None,
                 arrays: Mapping[str, np.ndarray] | None = None, timeout_s: float | None = None) -> Message:
        timeout = timeout_s or self.timeout_s
        deadline = time.monotonic() + timeout
        self._seq += 1
        session = self.robot.session if self.robot is not None else ""
        self.socket.sndtimeo = max(1, int(timeout * 1000))
        try:
            self.socket.send_multipart(encode(kind, session, self._seq, fields, arrays))
        except zmq.Again:
            raise BridgeTimeout(f"{kind}: could not send to {self.address} within {timeout} s "
                                f"(robot down, or CURVE keys refused)") from None
        while (left := deadline - time.monotonic()) > 0:
            if not self.socket.poll(max(1, int(left * 1000)), zmq.POLLIN):
                break
            frames, dropped = recv_bounded(self.socket, 1 + MAX_ARRAYS)
            if dropped:
                continue
            reply = decode(frames, replies=True)
            if reply.fields["reply_to"] != self._seq:
                continue  # a late reply to an earlier, timed-out request
            self._robot_time = reply.fields["robot_time"]
            if reply.type == "error":
                raise RobotError(reply.fields["code"], f"{kind}: {reply.fields['message']}")
            if reply.type != REPLY_TO_REQUEST[kind]:
                raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"{kind}: expected a {REPLY_TO_REQUEST[kind]} reply, got {reply.type}")
            return reply
        raise BridgeTimeout(f"{kind}: no reply from {self.address} within {timeout} s")
