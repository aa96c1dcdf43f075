"""Config pattern: one frozen dataclass per component, validated, with named presets.

Usage::

    @dataclass(frozen=True)
    class TrainConfig(Config):
        steps: int = 1000  # optimizer updates
        def validate(self):
            require(self.steps > 0, "steps must be > 0 (got {})", self.steps)
    TrainConfig.PRESETS = {"debug": dict(steps=5), "cpu": {}, "gpu": dict(steps=10**5)}

    cfg = TrainConfig.preset("debug", steps=10)     # preset + overrides
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar, TypeVar

PRESET_NAMES = ("debug", "cpu", "gpu")
C = TypeVar("C", bound="Config")


class ConfigError(ValueError):
    """A config field has a bad value; the message says which and what to do."""


def require(ok: bool, message: str, *args: Any) -> None:
    if not ok:
        raise ConfigError(message.format(*args))


@dataclasses.dataclass(frozen=True)
class Config:
    """Base for frozen, validated component configs."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Override: raise ConfigError naming the field and the fix."""

    @classmethod
    def preset(cls: type[C], name: str = "cpu", **overrides: Any) -> C:
        if name not in cls.PRESETS:
            raise ConfigError(f"{cls.__name__}: unknown preset {name!r}; choose one of {sorted(cls.PRESETS)}")
        return cls.from_dict({**cls.PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls: type[C], values: dict[str, Any]) -> C:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {unknown}; known fields are {sorted(names)}")
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        # JSON turns tuples into lists; restore them so configs compare equal after a round trip.
        fixed = {k: tuple(v) if isinstance(v, list) and "tuple" in str(kinds[k]) else v for k, v in values.items()}
        return cls(**fixed)

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
