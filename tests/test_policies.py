"""The scripted push policy against the real MuJoCo push task."""
from __future__ import annotations

import numpy as np
import pytest

from hvp.policies import PushExplorer
from hvp.sim import make
from hvp.simulate import simulate


def test_scripted_pushes_carry_the_block_in_every_episode():
    episodes = simulate("push", "push", 4, seed=3, progress=False)
    for episode in episodes:
        block = episode["true_state"][:, 2:4]
        assert np.linalg.norm(block[-1] - block[0]) > 0.1
    moving = np.concatenate([np.linalg.norm(np.diff(e["true_state"][:, 2:4], axis=0), axis=1) > 1e-3 for e in episodes])
    assert moving.mean() > 0.35


def test_the_push_policy_names_a_task_without_an_object():
    env = make("maze-easy")
    with pytest.raises(ValueError, match="no object to push"):
        PushExplorer().reset(env, np.random.default_rng(0))
    env.close()
