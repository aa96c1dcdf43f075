"""The robot side of the bridge: a ROUTER socket in front of a RobotDriver and a SafetyGate.

Why ROUTER + Poller: one socket serves any number of peers (a planner, a recorder, a
hostile scanner) without the lock-step state of REP, which a peer that sends and
never reads would wedge; every reply is routed to exactly its sender, a slow reader
costs a dropped reply instead of a blocked robot loop, and the Poller gives every
receive a timeout so the watchdogs run even when nobody talks. One session owns the
robot at a time: the peer that said hello, holding the session id it got back.
"""
from __future__ import annotations

import math
import secrets
import threading
import time
from typing import Any, Callable, Mapping

import numpy as np
import zmq

from hvp.contracts import RobotDriver
from hvp.real.drivers import EpisodicDriver
from hvp.real.keys import ServerCurve
from hvp.real.protocol import (MAX_ARRAYS, MAX_HEADER_BYTES, REPLY_TO_REQUEST, ErrorCode, Message, ProtocolError,
                               encode, robot_schema, schema_to_wire)
from hvp.real.safety import DISARM, HOLD, SafetyConfig, SafetyGate
from hvp.real.transport import configure, recv_bounded, require_secure
from hvp.real.validation import check_schema, decode, parse_schema

IDLE_POLL_S = 0.1  # longest sleep between stop checks while disarmed
REQUIRED_METADATA = ("control_hz", "image_shape", "state_dim", "action_dim")
Event = dict[str, Any]


def _wire_value(value: Any) -> Any:
    """Driver metadata -> msgpack-safe values (tuples become lists, numpy scalars Python ones)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_wire_value(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, (bool, int, float, str)) or value is None else str(value)


class RobotServer:
    """Serves one driver on `bind` until stop(); `on_event(dict)` sees arm, hold, disarm, applied, reject, ..."""

    def __init__(self, driver: RobotDriver, bind: str = "tcp://127.0.0.1:5555", *, safety: SafetyConfig = SafetyConfig(),
                 curve: ServerCurve | None = None, insecure_plaintext: bool = False, model_hash: str | None = None,
                 on_event: Callable[[Event], None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        require_secure(bind, curve, insecure_plaintext, "bind")
        missing = [k for k in REQUIRED_METADATA if k not in driver.metadata]
        if missing:
            raise ValueError(f"driver.metadata: expected keys {list(REQUIRED_METADATA)}, missing {missing}")
        meta = driver.metadata
        self.driver = driver
        self.schema = robot_schema(tuple(meta["image_shape"]), int(meta["state_dim"]), int(meta["action_dim"]))
        self.safety = safety
        self.clock = clock
        self.model_hash = model_hash
        self.on_event = on_event or (lambda event: None)
        self.gate = SafetyGate(driver.limits, float(meta["control_hz"]), safety, clock)
        self._session: str | None = None
        self._owner: bytes | None = None
        self._episode = 0
        self._seq = 0
        self._stop = threading.Event()
        self.context = zmq.Context()
        self._authenticator = None
        if curve is not None:
            from zmq.auth.thread import ThreadAuthenticator

            self._authenticator = ThreadAuthenticator(self.context)
            self._authenticator.start()
            self._authenticator.configure_curve(domain="*", location=str(curve.authorized_dir))
        self.socket = self.context.socket(zmq.ROUTER)
        # The robot only ever receives headers and actions: anything larger is hostile.
        action_bytes = 4 * int(meta["action_dim"])
        configure(self.socket, max(MAX_HEADER_BYTES, action_bytes) + 1024)
        if curve is not None:
            curve.apply(self.socket)
        self.socket.bind(bind)
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)

    # -- loop ---------------------------------------------------------------------------
    def serve(self) -> None:
        """Answer requests and run the watchdogs until stop() is called."""
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        while not self._stop.is_set():
            wait = min(self.gate.seconds_to_next_event() or IDLE_POLL_S, IDLE_POLL_S)
            if poller.poll(math.ceil(wait * 1000)):
                frames, dropped = recv_bounded(self.socket, 2 + MAX_ARRAYS)
                self._handle(frames, dropped)
            self._run_watchdogs()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Disarm and hold, then release the socket; call after serve() has returned."""
        if self.gate.armed:
            self._disarm("server closing")
        self.socket.close()
        if self._authenticator is not None:
            self._authenticator.stop()
        self.context.term()

    def __enter__(self) -> "RobotServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- events -------------------------------------------------------------------------
    def _emit(self, event: str, **fields: Any) -> None:
        self.on_event({"t": self.clock(), "event": event, **fields})

    def _disarm(self, reason: str) -> None:
        self.gate.disarm()
        self.driver.hold()
        self._emit("disarm", reason=reason)

    def _run_watchdogs(self) -> None:
        fired = self.gate.poll()
        if fired == HOLD:
            self.driver.hold()
            self._emit("hold")
        elif fired == DISARM:
            self.driver.hold()
            self._emit("disarm", reason="no valid command")

    # -- requests -----------------------------------------------------------------------
    def _handle(self, frames: list[bytes], dropped: bool) -> None:
        identity, body = frames[0], frames[1:]
        reply_to = 0  # requests number from 1; 0 means the request was unreadable
        try:
            if dropped:
                raise ProtocolError(ErrorCode.BAD_FRAMES, f"expected at most {1 + MAX_ARRAYS} frames, got more")
            message = decode(body)
            reply_to = message.seq
            fields, arrays = self._dispatch(identity, message)
            kind = REPLY_TO_REQUEST[message.type]
        except ProtocolError as err:
            self._emit("reject", code=err.code, message=err.message)
            kind, fields, arrays = "error", {"code": err.code, "message": err.message}, {}
        self._seq += 1
        session = self._session if identity == self._owner else ""  # never tell other peers the session id
        reply = encode(kind, session or "", self._seq,
                       {"reply_to": reply_to, "robot_time": self.clock(), **fields}, arrays)
        try:  # a peer that stopped reading loses its reply; the robot loop never waits for it
            self.socket.send_multipart([identity, *reply], zmq.NOBLOCK)
        except zmq.Again:
            self._emit("reply_dropped")

    def _dispatch(self, identity: bytes, message: Message) -> tuple[dict[str, Any], Mapping[str, np.ndarray]]:
        if message.type == "hello":
            return self._hello(identity, message), {}
        if self._session is None or message.session != self._session or identity != self._owner:
            raise ProtocolError(ErrorCode.NO_SESSION, f"{message.type}: expected the session id this peer got from "
                                                      f"hello; send hello first")
        handler = getattr(self, f"_on_{message.type}")
        return handler(message)

    def _hello(self, identity: bytes, message: Message) -> dict[str, Any]:
        if self.gate.armed:
            raise ProtocolError(ErrorCode.BUSY, "hello: the robot is armed by another session; wait for its disarm")
        if message.fields["schema"] is not None:
            theirs = parse_schema(message.fields["schema"], "hello.schema")
            ours = {g: {n: s.describe() for n, s in specs.items()} for g, specs in self.schema.items()}
            if {g: {n: s.describe() for n, s in specs.items()} for g, specs in theirs.items()} != ours:
                raise ProtocolError(ErrorCode.SCHEMA_MISMATCH, f"hello.schema: the robot provides {ours}, "
                                                               f"the planner expects {theirs}")
        model_hash = message.fields["model_hash"]
        if self.model_hash is not None and model_hash != self.model_hash:
            raise ProtocolError(ErrorCode.MODEL_MISMATCH, f"hello.model_hash: expected {self.model_hash!r}, got {model_hash!r:.80}")
        # A fresh gate per session: sequence numbers restart with each planner.
        self.gate = SafetyGate(self.driver.limits, float(self.driver.metadata["control_hz"]), self.safety, self.clock)
        self._session, self._owner = secrets.token_hex(16), identity
        self._emit("hello", session=self._session, model_hash=model_hash)
        limits = self.driver.limits
        return {
            "robot": {k: _wire_value(v) for k, v in self.driver.metadata.items()},
            "schema": schema_to_wire(self.schema),
            "limits": {"low": _wire_value(limits.low), "high": _wire_value(limits.high), "max_delta": float(limits.max_delta)},
            "safety": {"hold_after_s": self.gate.hold_after_s, "disarm_after_s": self.safety.disarm_after_s,
                       "max_ttl_s": self.safety.max_ttl_s, "range_margin": self.safety.range_margin},
            "model_hash": model_hash,
        }

    def _on_arm(self, message: Message) -> tuple[dict, dict]:
        if not self.gate.armed:
            self.gate.arm()
            self._emit("arm")
        return {}, {}

    def _on_disarm(self, message: Message) -> tuple[dict, dict]:
        if self.gate.armed:
            self._disarm("requested")
        return {}, {}

    def _on_heartbeat(self, message: Message) -> tuple[dict, dict]:
        self.gate.touch()
        return {}, {}

    def _on_reset(self, message: Message) -> tuple[dict, dict]:
        if not isinstance(self.driver, EpisodicDriver):
            raise ProtocolError(ErrorCode.UNSUPPORTED, "reset: this robot's driver does not start episodes")
        if self.gate.armed:
            raise ProtocolError(ErrorCode.ARMED, "reset: expected a disarmed robot; send disarm first")
        goal = self._call_driver("reset", message.fields["seed"])
        self._episode += 1
        self._emit("reset", episode=self._episode, seed=message.fields["seed"])
        return {"episode": self._episode}, ({} if goal is None else {"goal_image": goal})

    def _on_get_obs(self, message: Message) -> tuple[dict, dict]:
        self.gate.touch()
        obs = self._call_driver("get_obs")
        step = self.driver.episode_info()["step"] if isinstance(self.driver, EpisodicDriver) else 0
        return {"step": int(step)}, {"image": obs["image"], "state": obs["state"]}

    def _on_action(self, message: Message) -> tuple[dict, dict]:
        check_schema(message.arrays, self.schema["action"], "action")
        if isinstance(self.driver, EpisodicDriver) and self.driver.episode_info().get("done"):
            raise ProtocolError(ErrorCode.EPISODE_OVER, "action: the episode is over; disarm and reset")
        command = self.gate.approve(message.arrays["action"], message.seq, float(message.fields["deadline"]))
        applied = self._call_driver("exec_action", command, self.clock())
        self._emit("applied", seq=message.seq, action=_wire_value(applied))
        info = self.driver.episode_info() if isinstance(self.driver, EpisodicDriver) else {}
        return {"info": {k: _wire_value(v) for k, v in info.items()}}, {"action": np.asarray(applied, np.float32)}

    def _call_driver(self, method: str, *args: Any) -> Any:
        """Run a driver call; any failure disarms the robot (a driver may raise anything)."""
        try:
            return getattr(self.driver, method)(*args)
        except Exception as err:  # noqa: BLE001 - whatever broke, the robot must stop
            if self.gate.armed:
                self._disarm(f"driver {method} failed")
            raise ProtocolError(ErrorCode.DRIVER_ERROR, f"{method}: the driver failed: {type(err).__name__}: {err}") from err
