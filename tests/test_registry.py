from __future__ import annotations

import pytest

from hvp.registry import MissingBackendError, Registry, UnknownNameError


def test_lazy_entry_is_imported_only_when_made():
    registry = Registry("thing")
    registry.register("json-dumps", "json:dumps")
    assert registry.make("json-dumps", obj=[1]) == "[1]"


def test_missing_backend_names_the_extra():
    registry = Registry("env")
    registry.register("fancy", "hvp_no_such_backend.envs:Fancy", extra="fancy")
    with pytest.raises(MissingBackendError, match=r"pip install 'hvp\[fancy\]'"):
        registry.make("fancy")


def test_unknown_and_duplicate_names():
    registry = Registry("planner")
    registry.register("a", dict)
    with pytest.raises(UnknownNameError, match="known: a"):
        registry.make("b")
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a", list)
    registry.register("a", list, overwrite=True)
    assert registry.make("a") == []


def test_envs_verb_lists_every_task_in_aligned_columns(capsys):
    from hvp.cli import main
    from hvp.sim import ENVS

    assert main(["envs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == set(ENVS.names())
    assert all(len(row) == 5 for row in rows.values())  # no name runs into its backend column
    assert rows["maze-hard"][1:] == ["mujoco", "64x64", "2", "150"]
