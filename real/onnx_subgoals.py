"""OnnxSubgoalGenerator: an exported subgoal CVAE behind hvp.contracts.SubgoalGenerator, numpy + onnxruntime only.

Same contract and numerics as hvp.models.subgoal.TorchSubgoalGenerator: the recursive midpoint
tree (hvp.subgoal_tree) runs in numpy around one graph (exported by `hvp export` when the run
has RUN/subgoals):

    subgoal_midpoint   start float32 [B, D], goal float32 [B, D], codes float32 [B, C] -> midpoint float32 [B, D]
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from hvp.real.onnx_folder import open_model
from hvp.subgoal_tree import recursive_midpoints

KIND = "subgoal_cvae"
GRAPH = "subgoal_midpoint"


class OnnxSubgoalGenerator:
    """propose(start, goal, codes) -> subgoal chains; `threads` intra-op threads (default: the cores)."""

    def __init__(self, model_dir: str | os.PathLike, threads: int | None = None,
                 providers: Sequence[str] = ("CPUExecutionProvider",)) -> None:
        model = open_model(model_dir, KIND, (GRAPH,), threads, providers)
        self._session = model.sessions[GRAPH]
        self.model_hash, self.schema_hash = model.model_hash, model.schema_hash
        self.latent_dim = int(model.config["latent_dim"])
        self.code_dim = int(model.config["code_dim"])

    def midpoint(self, start: np.ndarray, goal: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """start, goal float32 [B, D], codes float32 [B, C] -> midpoint latents float32 [B, D]: one graph call."""
        (midpoint,) = self._session.run(None, {"start": np.ascontiguousarray(start), "goal": np.ascontiguousarray(goal),
                                               "codes": np.ascontiguousarray(codes)})
        return midpoint

    def propose(self, start: np.ndarray, goal: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """start, goal float32 [D]; codes float32 [N, K, C] (K = 1, 3, 7, ...) -> subgoal latents float32 [N, K, D]
        in time order."""
        return recursive_midpoints(self.midpoint, start, goal, codes, self.latent_dim, self.code_dim)
