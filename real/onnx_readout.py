"""OnnxReadout: an exported state readout behind hvp.contracts.StateReadout, numpy + onnxruntime only.

Same contract and numerics as hvp.models.readout.TorchReadout. Graph (exported by `hvp export` when
the run has RUN/readout):

    state_readout   latents float32 [B, D] -> states float32 [B, S]

`task` is the registered task whose true state it reads: the planner scores the estimates with
that task's state_cost (hvp.sim.task_state_cost; planners/costs.StateCost).
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from hvp.contracts import check_array
from hvp.real.onnx_folder import open_model

KIND = "state_readout"


class OnnxReadout:
    """states(latents) -> estimated true states; `threads` intra-op threads (default: the cores)."""

    def __init__(self, model_dir: str | os.PathLike, threads: int | None = None,
                 providers: Sequence[str] = ("CPUExecutionProvider",)) -> None:
        model = open_model(model_dir, KIND, (KIND,), threads, providers)
        self._session = model.sessions[KIND]
        self.model_hash, self.schema_hash = model.model_hash, model.schema_hash
        self.latent_dim, self.state_dim = int(model.config["latent_dim"]), int(model.config["state_dim"])
        self.task = model.config.get("task")

    def states(self, latents: np.ndarray) -> np.ndarray:
        """latents float32 [N, D] -> float32 [N, S]."""
        latents = check_array("latents", latents, (None, self.latent_dim), np.float32)
        (states,) = self._session.run(None, {"latents": np.ascontiguousarray(latents)})
        return states
