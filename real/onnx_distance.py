"""OnnxDistance: an exported temporal-distance model behind hvp.contracts.Distance, numpy + onnxruntime only.

Same contract and numerics as hvp.models.temporal_distance.TorchDistance. Graph (exported by
`hvp export` when the run has RUN/distance):

    temporal_distance   latents_a float32 [B, D], latents_b float32 [B, D] -> steps float32 [B] in [0, K_max]
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from hvp.contracts import check_latent_pair
from hvp.real.onnx_folder import open_model

KIND = "temporal_distance"


class OnnxDistance:
    """steps(latents_a, latents_b) -> predicted control steps; `threads` intra-op threads (default: the cores)."""

    def __init__(self, model_dir: str | os.PathLike, threads: int | None = None,
                 providers: Sequence[str] = ("CPUExecutionProvider",)) -> None:
        model = open_model(model_dir, KIND, (KIND,), threads, providers)
        self._session = model.sessions[KIND]
        self.model_hash, self.schema_hash = model.model_hash, model.schema_hash
        self.latent_dim = int(model.config["latent_dim"])
        self.max_steps = int(model.config["max_steps"])

    def steps(self, latents_a: np.ndarray, latents_b: np.ndarray) -> np.ndarray:
        """latents_a float32 [N, D], latents_b float32 [N, D] or [1, D] -> predicted control steps float32 [N]."""
        a, b = check_latent_pair(latents_a, latents_b, self.latent_dim)
        # the graph takes equal batches; one target row is repeated like TorchDistance's expand_as
        b = np.ascontiguousarray(np.broadcast_to(b, a.shape))
        (steps,) = self._session.run(None, {"latents_a": np.ascontiguousarray(a), "latents_b": b})
        return steps
