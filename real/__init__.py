"""Deployment on a robot computer: ZMQ bridge, safety gate, robot drivers. No torch.

Robot side: `RobotServer(driver, bind)` with `SimDriver(env)` or your own RobotDriver
(docs/robot_driver.md). Planner side: `RobotClient(address)`. Wire format:
docs/protocol.md. Every module here imports only numpy, pyzmq, msgpack and hvp's
torch-free core (contracts, config).
"""
from hvp.real.client import Applied, BridgeTimeout, RobotClient, RobotError, RobotInfo
from hvp.real.drivers import EpisodicDriver, SimDriver
from hvp.real.keys import ClientCurve, ServerCurve, generate_keys
from hvp.real.protocol import PROTOCOL_VERSION, ArraySpec, ErrorCode, ProtocolError, robot_schema
from hvp.real.safety import SafetyConfig, SafetyGate
from hvp.real.server import RobotServer

__all__ = ["Applied", "ArraySpec", "BridgeTimeout", "ClientCurve", "EpisodicDriver", "ErrorCode", "PROTOCOL_VERSION",
           "ProtocolError", "RobotClient", "RobotError", "RobotInfo", "RobotServer", "SafetyConfig", "SafetyGate",
           "ServerCurve", "SimDriver", "generate_keys", "robot_schema"]
