"""Shared pieces of the bridge tests: a sim-backed robot server on an ephemeral loopback port."""
import contextlib
import threading

import pytest

from hvp.real.drivers import SimDriver
from hvp.real.server import RobotServer


@pytest.fixture
def maze_driver():
    from hvp.sim import make

    # Not reset here: an EGL context belongs to the thread that made it, so the first
    # render must happen in the server thread that will keep using the driver.
    driver = SimDriver(make("maze-easy"), name="sim:maze-easy")
    yield driver
    driver.close()


@contextlib.contextmanager
def serving(driver, **kwargs):
    """Run a RobotServer in a thread on tcp://127.0.0.1:<free port>; yields (server, events)."""
    events = []
    server = RobotServer(driver, "tcp://127.0.0.1:*", on_event=events.append, **kwargs)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server, events
    finally:
        server.stop()
        thread.join(timeout=5)
        server.close()
