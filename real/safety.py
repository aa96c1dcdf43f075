"""The robot side's safety gate: which commanded actions may move the robot, and watchdogs.

Pure logic with an injectable clock, so every rule is unit-testable without sockets:
- a disarmed gate approves nothing; arming is always explicit;
- an action past its deadline (stale), with a deadline too far ahead, or whose seq
  does not increase (replayed or out of order) is refused;
- non-finite actions, or ones farther outside the limits than `range_margin`, are
  refused; the rest are clipped to the limits and to `max_delta` per step;
- `hold_after_periods` control periods without an approved action -> "hold";
  `disarm_after_s` without any valid command from the owner -> "disarm".
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hvp.config import Config, require
from hvp.contracts import ActionLimits, check_array
from hvp.real.protocol import ErrorCode, ProtocolError

HOLD = "hold"
DISARM = "disarm"


@dataclass(frozen=True)
class SafetyConfig(Config):
    hold_after_periods: int = 3  # missed control periods before the robot holds its pose
    disarm_after_s: float = 1.0  # seconds without a valid command before the robot disarms
    max_ttl_s: float = 1.0  # an action's deadline may lie at most this far ahead of the robot's clock
    range_margin: float = 0.5  # refuse (not clip) actions beyond the limits by more than this fraction of the range

    def validate(self) -> None:
        require(self.hold_after_periods >= 1, "SafetyConfig.hold_after_periods must be >= 1 (got {})", self.hold_after_periods)
        require(self.disarm_after_s > 0, "SafetyConfig.disarm_after_s must be > 0 seconds (got {})", self.disarm_after_s)
        require(self.max_ttl_s > 0, "SafetyConfig.max_ttl_s must be > 0 seconds (got {})", self.max_ttl_s)
        require(self.range_margin >= 0, "SafetyConfig.range_margin must be >= 0 (got {})", self.range_margin)


SafetyConfig.PRESETS = {"debug": {}, "cpu": {}, "gpu": {}}


class SafetyGate:
    """Decides, for one robot, whether an action may be applied and what is applied.

    `rest_action` float32 [A] is what the robot does while holding (zeros clipped into
    the limits: no force, no velocity); the per-step change of the first action after
    arming or holding is measured from it.
    """

    def __init__(self, limits: ActionLimits, control_hz: float, config: SafetyConfig = SafetyConfig(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        low = check_array("limits.low", np.asarray(limits.low, np.float32), (None,), np.float32)
        high = check_array("limits.high", np.asarray(limits.high, np.float32), low.shape, np.float32)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(low <= high)):
            raise ValueError(f"limits: expected finite low <= high, got low={low}, high={high}")
        if not limits.max_delta > 0:
            raise ValueError(f"limits.max_delta: expected > 0, got {limits.max_delta}")
        if not control_hz > 0:
            raise ValueError(f"control_hz: expected > 0, got {control_hz}")
        self.low, self.high, self.max_delta = low, high, float(limits.max_delta)
        self.hold_after_s = config.hold_after_periods / control_hz
        self.config = config
        self.clock = clock
        self.rest_action = np.clip(np.zeros_like(low), low, high)
        self.armed = False
        self.holding = False
        self._reference = self.rest_action
        self._last_seq = -1
        self._last_action_time = 0.0
        self._last_alive_time = 0.0

    def arm(self) -> None:
        now = self.clock()
        self.armed, self.holding = True, False
        self._reference = self.rest_action
        self._last_action_time = self._last_alive_time = now

    def disarm(self) -> None:
        self.armed, self.holding = False, False
        self._reference = self.rest_action

    def touch(self) -> None:
        """A valid command other than an action came from the owner: it keeps the robot armed."""
        if self.armed:
            self._last_alive_time = self.clock()

    def approve(self, action: np.ndarray, seq: int, deadline: float) -> np.ndarray:
        """action float32 [A] -> the action to apply, float32 [A]; raises ProtocolError if refused."""
        now = self.clock()
        if not self.armed:
            raise ProtocolError(ErrorCode.NOT_ARMED, "action: the robot is disarmed; send arm first")
        if now > deadline:
            raise ProtocolError(ErrorCode.STALE, f"action: deadline {deadline:.4f} passed, robot time is {now:.4f}")
        if deadline > now + self.config.max_ttl_s:
            raise ProtocolError(ErrorCode.BAD_DEADLINE, f"action: deadline expected at most {self.config.max_ttl_s} s "
                                                        f"ahead of robot time {now:.4f}, got {deadline:.4f}")
        if seq <= self._last_seq:
            raise ProtocolError(ErrorCode.OUT_OF_ORDER, f"action: seq expected > {self._last_seq}, got {seq}")
        if action.shape != self.low.shape or not np.all(np.isfinite(action)):
            raise ProtocolError(ErrorCode.NON_FINITE, f"action: expected {self.low.shape[0]} finite values, got {action}")
        margin = self.config.range_margin * (self.high - self.low)
        if np.any(action < self.low - margin) or np.any(action > self.high + margin):
            raise ProtocolError(ErrorCode.OUT_OF_RANGE, f"action: expected within [{self.low}, {self.high}] "
                                                        f"(+- {self.config.range_margin} of the range), got {action}")
        clipped = np.clip(action.astype(np.float32), self.low, self.high)
        applied = np.clip(clipped, self._reference - self.max_delta, self._reference + self.max_delta).astype(np.float32)
        self._last_seq = seq
        self._reference = applied
        self._last_action_time = self._last_alive_time = now
        self.holding = False
        return applied

    def poll(self) -> str | None:
        """Run the watchdogs: HOLD or DISARM when one fires (each once per lapse), else None."""
        if not self.armed:
            return None
        now = self.clock()
        if now - self._last_alive_time >= self.config.disarm_after_s:
            self.disarm()
            return DISARM
        if not self.holding and now - self._last_action_time >= self.hold_after_s:
            self.holding = True
            self._reference = self.rest_action
            return HOLD
        return None

    def seconds_to_next_event(self) -> float | None:
        """How long until poll() could fire (for the receive timeout); None when disarmed."""
        if not self.armed:
            return None
        now = self.clock()
        until_disarm = self._last_alive_time + self.config.disarm_after_s - now
        until_hold = self._last_action_time + self.hold_after_s - now if not self.holding else until_disarm
        return max(0.0, min(until_disarm, until_hold))
