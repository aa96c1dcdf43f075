"""CurveZMQ keys for the bridge: generation, and the key files each side loads.

Layout written by `hvp keys --out DIR` (zmq.auth certificate files, Z85 text):
    DIR/robot.key, DIR/robot.key_secret       the robot server's pair
    DIR/planner.key, DIR/planner.key_secret   a planner (client) pair
    DIR/authorized/planner.key                public keys the robot accepts
The robot needs robot.key_secret and authorized/; a planner needs its own
*.key_secret and robot.key (public). Copy secret files only where they are used.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

ROBOT = "robot"
PLANNER = "planner"
AUTHORIZED = "authorized"


def generate_keys(out_dir: str | Path, client_names: tuple[str, ...] = (PLANNER,), overwrite: bool = False) -> list[Path]:
    """Write a robot key pair, one pair per client name, and authorize those clients; returns the files written."""
    out = Path(out_dir)
    names = (ROBOT, *client_names)
    if len(set(names)) != len(names) or not all(n.isidentifier() for n in names):
        raise ValueError(f"client_names: expected distinct identifiers other than {ROBOT!r}, got {client_names}")
    existing = [out / f"{n}.key_secret" for n in names if (out / f"{n}.key_secret").exists()]
    if existing and not overwrite:
        raise FileExistsError(f"out_dir: {existing[0]} already exists; pass overwrite=True (--force) to replace the keys")
    (out / AUTHORIZED).mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        public, secret = zmq.auth.create_certificates(str(out), name)
        os.chmod(secret, 0o600)  # a secret key readable by others is no secret
        written += [Path(public), Path(secret)]
        if name != ROBOT:
            written.append(Path(shutil.copy(public, out / AUTHORIZED / f"{name}.key")))
    return written


def _load(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise FileNotFoundError(f"key file: expected {path} (written by `hvp keys --out DIR`), found nothing")
    public, secret_key = zmq.auth.load_certificate(str(path))
    if secret and secret_key is None:
        raise ValueError(f"key file: expected a secret key in {path}, found only a public key")
    return public, secret_key


@dataclass(frozen=True)
class ServerCurve:
    """The robot's key pair and the folder of client public keys it accepts."""

    secret_file: Path
    authorized_dir: Path

    @classmethod
    def from_dir(cls, keys_dir: str | Path) -> "ServerCurve":
        keys = Path(keys_dir)
        curve = cls(keys / f"{ROBOT}.key_secret", keys / AUTHORIZED)
        if not curve.authorized_dir.is_dir():
            raise FileNotFoundError(f"keys_dir: expected a folder {curve.authorized_dir} of allowed client keys, found nothing")
        _load(curve.secret_file, secret=True)
        return curve

    def apply(self, socket: zmq.Socket) -> None:
        public, secret = _load(self.secret_file, secret=True)
        socket.curve_publickey, socket.curve_secretkey = public, secret
        socket.curve_server = True


@dataclass(frozen=True)
class ClientCurve:
    """A planner's key pair and the robot's public key."""

    secret_file: Path
    server_public_file: Path

    @classmethod
    def from_dir(cls, keys_dir: str | Path, name: str = PLANNER) -> "ClientCurve":
        keys = Path(keys_dir)
        curve = cls(keys / f"{name}.key_secret", keys / f"{ROBOT}.key")
        _load(curve.secret_file, secret=True)
        _load(curve.server_public_file, secret=False)
        return curve

    def apply(self, socket: zmq.Socket) -> None:
        public, secret = _load(self.secret_file, secret=True)
        socket.curve_publickey, socket.curve_secretkey = public, secret
        socket.curve_serverkey = _load(self.server_public_file, secret=False)[0]
