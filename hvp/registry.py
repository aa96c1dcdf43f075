"""Name -> factory registries with lazily imported backends.

A factory is given as a callable or as an import string "module:attribute", so an
optional backend (robosuite, pybullet) is imported only when one of its entries is
made, and a missing one fails with the pip extra to install.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class MissingBackendError(ImportError):
    """An optional dependency of a registered entry is not installed."""


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[..., Any] | str
    extra: str | None = None  # pip extra that provides the backend, e.g. "robosuite"
    info: dict[str, Any] = field(default_factory=dict)  # shown by listings (backend, sizes, ...)
    defaults: dict[str, Any] = field(default_factory=dict)  # keyword arguments given to the factory

    def resolve(self) -> Callable[..., Any]:
        if callable(self.factory):
            return self.factory
        module_name, _, attribute = self.factory.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if self.extra is None:
                raise
            raise MissingBackendError(
                f"{self.name!r} needs the optional package {err.name!r}: pip install 'hvp[{self.extra}]'"
            ) from err
        return getattr(module, attribute)


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, factory: Callable[..., T] | str, *, extra: str | None = None,
                 info: dict[str, Any] | None = None, overwrite: bool = False, **defaults: Any) -> None:
        if not overwrite and name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered; pass overwrite=True to replace it")
        self._entries[name] = Entry(name, factory, extra, dict(info or {}), defaults)

    def entry(self, name: str) -> Entry:
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}")
        return self._entries[name]

    def make(self, name: str, **overrides: Any) -> T:
        entry = self.entry(name)
        return entry.resolve()(**{**entry.defaults, **overrides})

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
