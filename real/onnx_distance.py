"""OnnxDistance: an exported temporal-distance model behind hvp.contracts.Distance, numpy + onnxruntime only.

Same contract and numerics as hvp.models.temporal_distance.TorchDistance. Graph (exported by
`hvp export` when the run has RUN/distance):

    temporal_distance   latents_a float32 [B, D], latents_b float32 [B, D] -> steps float32 [B] in [0, K_max]
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hvp.contracts import check_latent_pair
from hvp.real.onnx_folder import OneGraphModel

KIND = "temporal_distance"


class OnnxDistance(OneGraphModel):
    """steps(latents_a, latents_b) -> predicted control steps; OnnxDistance(model_dir, threads=None)."""

    kind = graph = KIND

    def configure(self, config: dict[str, Any]) -> None:
        self.max_steps = int(config["max_steps"])

    def steps(self, latents_a: np.ndarray, latents_b: np.ndarray) -> np.ndarray:
        """latents_a float32 [N, D], latents_b float32 [N, D] or [1, D] -> predicted control steps float32 [N]."""
        a, b = check_latent_pair(latents_a, latents_b, self.latent_dim)
        # the graph takes equal batches; one target row is repeated like TorchDistance's expand_as
        return self.run(latents_a=a, latents_b=np.broadcast_to(b, a.shape))
