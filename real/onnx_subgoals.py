"""OnnxSubgoalGenerator: an exported subgoal CVAE behind hvp.contracts.SubgoalGenerator, numpy + onnxruntime only.

Same contract and numerics as hvp.models.subgoal.TorchSubgoalGenerator: the recursive midpoint
tree (hvp.subgoal_tree) runs in numpy around one graph (exported by `hvp export` when the run
has RUN/subgoals):

    subgoal_midpoint   start float32 [B, D], goal float32 [B, D], codes float32 [B, C] -> midpoint float32 [B, D]
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hvp.real.onnx_folder import OneGraphModel
from hvp.subgoal_tree import recursive_midpoints

KIND = "subgoal_cvae"
GRAPH = "subgoal_midpoint"


class OnnxSubgoalGenerator(OneGraphModel):
    """propose(start, goal, codes) -> subgoal chains; OnnxSubgoalGenerator(model_dir, threads=None)."""

    kind, graph = KIND, GRAPH

    def configure(self, config: dict[str, Any]) -> None:
        self.code_dim = int(config["code_dim"])

    def midpoint(self, start: np.ndarray, goal: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """start, goal float32 [B, D], codes float32 [B, C] -> midpoint latents float32 [B, D]: one graph call."""
        return self.run(start=start, goal=goal, codes=codes)

    def propose(self, start: np.ndarray, goal: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """start, goal float32 [D]; codes float32 [N, K, C] (K = 1, 3, 7, ...) -> subgoal latents float32 [N, K, D]
        in time order."""
        return recursive_midpoints(self.midpoint, start, goal, codes, self.latent_dim, self.code_dim)
