"""SafetyGate rules with a fake clock: no sockets, no robot."""
import numpy as np
import pytest

from hvp.config import ConfigError
from hvp.contracts import ActionLimits
from hvp.real.protocol import ErrorCode, ProtocolError
from hvp.real.safety import DISARM, HOLD, SafetyConfig, SafetyGate


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def gate(clock):
    limits = ActionLimits(np.array([-1, -1], np.float32), np.array([1, 1], np.float32), max_delta=0.3)
    return SafetyGate(limits, control_hz=10.0, config=SafetyConfig(), clock=clock)


def a(*values):
    return np.array(values, np.float32)


def refused(gate, action, seq, deadline):
    with pytest.raises(ProtocolError) as info:
        gate.approve(action, seq, deadline)
    return info.value.code


def test_disarmed_gate_approves_nothing_and_arming_is_explicit(gate, clock):
    assert refused(gate, a(0.1, 0.1), 1, clock.now + 0.5) == ErrorCode.NOT_ARMED
    gate.arm()
    gate.approve(a(0.1, 0.1), 1, clock.now + 0.5)
    gate.disarm()
    assert refused(gate, a(0.1, 0.1), 2, clock.now + 0.5) == ErrorCode.NOT_ARMED


def test_clips_to_limits_and_to_max_step_change(gate, clock):
    gate.arm()
    first = gate.approve(a(1.4, -0.1), 1, clock.now + 0.5)  # 1.4 -> limit 1.0 -> rest 0 + 0.3
    np.testing.assert_allclose(first, [0.3, -0.1])
    second = gate.approve(a(1.0, 1.0), 2, clock.now + 0.5)
    np.testing.assert_allclose(second, [0.6, 0.2])
    assert second.dtype == np.float32


def test_stale_far_future_and_replayed_actions_are_refused(gate, clock):
    gate.arm()
    assert refused(gate, a(0, 0), 1, clock.now - 0.001) == ErrorCode.STALE
    assert refused(gate, a(0, 0), 1, clock.now + 5.0) == ErrorCode.BAD_DEADLINE
    gate.approve(a(0, 0), 5, clock.now + 0.5)
    assert refused(gate, a(0, 0), 5, clock.now + 0.5) == ErrorCode.OUT_OF_ORDER
    assert refused(gate, a(0, 0), 4, clock.now + 0.5) == ErrorCode.OUT_OF_ORDER
    gate.approve(a(0, 0), 6, clock.now + 0.5)


def test_far_out_of_range_and_non_finite_are_refused_not_clipped(gate, clock):
    gate.arm()
    assert refused(gate, a(2.01, 0), 1, clock.now + 0.5) == ErrorCode.OUT_OF_RANGE  # margin 0.5 x range 2 = 1
    assert refused(gate, a(np.nan, 0), 1, clock.now + 0.5) == ErrorCode.NON_FINITE
    np.testing.assert_allclose(gate.approve(a(1.99, 0), 1, clock.now + 0.5), [0.3, 0])


def test_holds_after_three_missed_periods_once_and_resumes_from_rest(gate, clock):
    gate.arm()
    gate.approve(a(0.3, 0), 1, clock.now + 0.5)
    gate.approve(a(0.6, 0), 2, clock.now + 0.5)
    clock.now += 0.299
    assert gate.poll() is None
    assert gate.seconds_to_next_event() == pytest.approx(0.001)
    clock.now += 0.001
    assert gate.poll() == HOLD
    assert gate.poll() is None  # fires once per lapse
    assert gate.armed and gate.holding
    resumed = gate.approve(a(0.6, 0), 3, clock.now + 0.5)  # measured from rest, not from 0.6
    np.testing.assert_allclose(resumed, [0.3, 0])
    assert not gate.holding


def test_disarms_after_one_second_without_commands_and_needs_rearm(gate, clock):
    gate.arm()
    clock.now += 0.6
    gate.touch()  # heartbeat keeps it armed (while holding)
    assert gate.poll() == HOLD
    clock.now += 0.99
    assert gate.poll() is None
    clock.now += 0.01
    assert gate.poll() == DISARM
    assert not gate.armed and gate.poll() is None and gate.seconds_to_next_event() is None
    assert refused(gate, a(0, 0), 1, clock.now + 0.5) == ErrorCode.NOT_ARMED
    gate.arm()
    gate.approve(a(0, 0), 1, clock.now + 0.5)


def test_bad_limits_and_config_are_rejected_with_names():
    with pytest.raises(ValueError, match="limits.max_delta"):
        SafetyGate(ActionLimits(a(-1), a(1), 0.0), 10.0)
    with pytest.raises(ValueError, match="low <= high"):
        SafetyGate(ActionLimits(a(1), a(-1), 0.1), 10.0)
    with pytest.raises(ValueError, match="control_hz"):
        SafetyGate(ActionLimits(a(-1), a(1), 0.1), 0.0)
    with pytest.raises(ConfigError, match="disarm_after_s"):
        SafetyConfig(disarm_after_s=0)
