"""OnnxReadout: an exported state readout behind hvp.contracts.StateReadout, numpy + onnxruntime only.

Same contract and numerics as hvp.models.readout.TorchReadout. Graph (exported by `hvp export` when
the run has RUN/readout):

    state_readout   latents float32 [B, D] -> states float32 [B, S]

`task` is the registered task whose true state it reads: the planner scores the estimates with
that task's state_cost (hvp.sim.task_state_cost; planners/costs.StateCost).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hvp.contracts import check_array
from hvp.real.onnx_folder import OneGraphModel

KIND = "state_readout"


class OnnxReadout(OneGraphModel):
    """states(latents) -> estimated true states; OnnxReadout(model_dir, threads=None)."""

    kind = graph = KIND

    def configure(self, config: dict[str, Any]) -> None:
        self.state_dim, self.task = int(config["state_dim"]), config.get("task")

    def states(self, latents: np.ndarray) -> np.ndarray:
        """latents float32 [N, D] -> float32 [N, S]."""
        return self.run(latents=check_array("latents", latents, (None, self.latent_dim), np.float32))
