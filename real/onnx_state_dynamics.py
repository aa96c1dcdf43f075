"""OnnxStateDynamics: an exported state dynamics behind hvp.contracts.StateDynamics, numpy + onnxruntime only.

Same contract and numerics as hvp.models.state_dynamics.TorchStateDynamics. Graph (exported by
`hvp export` when the run has RUN/state_dynamics):

    state_dynamics_step   states float32 [B, S], recent_actions float32 [B, K, A], actions float32 [B, A]
                          -> next_states float32 [B, S]

rollout() loops over the horizon here, as TorchStateDynamics loops in torch.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hvp.contracts import check_state_rollout, with_newest_action
from hvp.real.onnx_folder import OneGraphModel

KIND = "state_dynamics"


class OnnxStateDynamics(OneGraphModel):
    """rollout(states, recent_actions, actions) -> the states after each action; OnnxStateDynamics(model_dir)."""

    kind = KIND
    graph = "state_dynamics_step"

    def configure(self, config: dict[str, Any]) -> None:
        self.state_dim, self.action_dim = int(config["state_dim"]), int(config["action_dim"])
        self.history, self.task = int(config["history"]), config.get("task")

    def rollout(self, states: np.ndarray, recent_actions: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """states float32 [N, S], recent_actions float32 [N, K, A] (newest first), actions float32 [N, H, A]
        -> float32 [N, H, S]."""
        states, recent, actions = check_state_rollout(self, states, recent_actions, actions)
        path = []
        for step in range(actions.shape[1]):
            states = self.run(states=states, recent_actions=recent, actions=actions[:, step])
            recent = with_newest_action(recent, actions[:, step])
            path.append(states)
        return np.stack(path, axis=1)
