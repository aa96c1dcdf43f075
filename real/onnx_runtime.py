"""OnnxRuntime: an exported RSSM (hvp export) behind hvp.contracts.ModelRuntime, numpy + onnxruntime only.

Same contract, state and numerics as hvp.models.runtime.TorchRuntime:
state {"deter": float32 [B, deter], "stoch": float32 [B, stoch]}, latent D = deter + stoch.

Graphs (folder layout and hashes: hvp.onnx_format), batch axis B dynamic:

    encoder       images uint8 [B, h, w, 3] -> embedding float32 [B, E]
    observe_step  deter [B, deter], stoch [B, stoch], action [B, A], embedding [B, E] -> deter_next, stoch_next
    imagine_step  deter [B, deter], stoch [B, stoch], action [B, A] -> deter_next, stoch_next (prior mean)
    decoder       latents float32 [B, D] -> images uint8 [B, h, w, 3]
    decoder_on_reference (a model trained with reference_blend only)
                  latents float32 [B, D], reference uint8 [B, h, w, 3] -> images uint8 [B, h, w, 3]

imagine() calls imagine_step once per horizon step, so any horizon works with one graph:
a graph unrolled over a fixed H=10 was about 10% faster at N=128 on one thread here
(5.9 vs 6.6 ms, bench/runtime.py), not worth tying the export to one planning horizon.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from hvp.contracts import NOT_OBSERVING_ROBOT_STATE, ModelState, check_array, check_proprio
from hvp.real.onnx_folder import open_model

GRAPH_NAMES = ("encoder", "observe_step", "imagine_step", "decoder")


def _float_array(name: str, value: Any, shape: tuple[int | None, ...]) -> np.ndarray:
    """Like check_array for float32, but accepts any float dtype (planners often hold float64) and casts."""
    if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
        got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise TypeError(f"{name}: expected a float32 numpy array, got {got}")
    return check_array(name, value.astype(np.float32, copy=False), shape, np.float32)


class OnnxRuntime:
    """hvp.contracts.ModelRuntime over an `hvp export` folder; never mutates a state it is given.

    `model_hash` identifies the exported folder (for the bridge handshake); `threads` is
    onnxruntime's intra-op thread count per session (default 1: two measured 2.7x slower per plan step
    on a 2-core machine, bench/results/runtime.json).
    """

    def __init__(self, model_dir: str | os.PathLike, threads: int | None = 1,
                 providers: Sequence[str] = ("CPUExecutionProvider",), warmup: bool = True) -> None:
        model = open_model(model_dir, "rssm", GRAPH_NAMES, threads, providers)
        self._sessions = model.sessions
        self.manifest, self.model_hash, self.schema_hash = model.manifest, model.model_hash, model.schema_hash
        self.threads = self._sessions["encoder"].get_session_options().intra_op_num_threads
        config = model.config
        self.image_shape = (*config["image_size"], 3)
        self.action_dim = int(config["action_dim"])
        self.latent_dim = int(config["deter_dim"]) + int(config["stoch_dim"])
        self._deter = int(config["deter_dim"])
        # a model that observes its robot state exports the scale its h holds that state in (hvp.models.export)
        self._robot_scale = (tuple(np.asarray(config[key], np.float32) for key in ("proprio_mean", "proprio_std"))
                             if config.get("observe_robot_state") else None)
        if warmup:
            self._warm_up()

    def _warm_up(self) -> None:
        """One call of every graph: onnxruntime allocates and picks kernels on the first run."""
        state = self.initial_state(1)
        self.observe(state, np.zeros((1, *self.image_shape), np.uint8), np.zeros((1, self.action_dim), np.float32))
        self.decode(self.imagine(state, np.zeros((1, 1, self.action_dim), np.float32)))

    # -- input checks (the same as TorchRuntime's) ----------------------------------------
    def _state(self, state: ModelState, batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(state, dict) or set(state) != {"deter", "stoch"}:
            raise ValueError(f"state: expected a dict with keys ['deter', 'stoch'], got {state!r:.80}")
        rows = batch if batch is not None else state["deter"].shape[0]
        deter = check_array("state['deter']", state["deter"], (rows, self._deter), np.float32)
        stoch = check_array("state['stoch']", state["stoch"], (rows, self.latent_dim - self._deter), np.float32)
        return deter, stoch

    def _run(self, graph: str, **inputs: np.ndarray) -> list[np.ndarray]:
        return self._sessions[graph].run(None, inputs)

    # -- ModelRuntime ------------------------------------------------------------------
    def initial_state(self, batch: int) -> ModelState:
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch: expected a positive int, got {batch!r}")
        return {"deter": np.zeros((batch, self._deter), np.float32),
                "stoch": np.zeros((batch, self.latent_dim - self._deter), np.float32)}

    def observe(self, state: ModelState, images: np.ndarray, actions: np.ndarray) -> ModelState:
        """state (batch B), images uint8 [B, h, w, 3], actions float32 [B, A] that led to them -> new state."""
        batch = check_array("images", images, (None, *self.image_shape), np.uint8).shape[0]
        actions = _float_array("actions", actions, (batch, self.action_dim))
        deter, stoch = self._state(state, batch)
        (embedding,) = self._run("encoder", images=np.ascontiguousarray(images))
        deter, stoch = self._run("observe_step", deter=deter, stoch=stoch, action=actions, embedding=embedding)
        return {"deter": deter, "stoch": stoch}

    @property
    def observes_robot_state(self) -> bool:
        """Whether the model filters the robot's measured state too: then each observe() must be followed by
        observe_proprio(), as TorchRuntime's."""
        return self._robot_scale is not None

    def observe_proprio(self, state: ModelState, proprio: np.ndarray) -> ModelState:
        """state (batch B) after observe(), proprio float32 [B, S] measured with that image (obs["state"]) -> new
        state whose robot-state dims hold it (an export of a model trained with observe_robot_state only)."""
        if self._robot_scale is None:
            raise TypeError(NOT_OBSERVING_ROBOT_STATE)
        deter, stoch = self._state(state)
        mean, std = self._robot_scale
        proprio = check_proprio(proprio, deter.shape[0], len(mean))
        deter = deter.copy()
        deter[:, -len(mean):] = (proprio - mean) / std
        return {"deter": deter, "stoch": stoch.copy()}

    def encode(self, images: np.ndarray) -> np.ndarray:
        """images uint8 [B, h, w, 3] -> latents float32 [B, D]: a single image seen from the initial belief."""
        batch = check_array("images", images, (None, *self.image_shape), np.uint8).shape[0]
        zero = np.zeros((batch, self.action_dim), np.float32)
        return self.latent(self.observe(self.initial_state(batch), images, zero))

    def imagine(self, state: ModelState, actions: np.ndarray) -> np.ndarray:
        """state (batch 1 or N), actions float32 [N, H, A] -> latents float32 [N, H, D] after each action."""
        actions = _float_array("actions", actions, (None, None, self.action_dim))
        count, horizon = actions.shape[:2]
        batch = state["deter"].shape[0] if isinstance(state, dict) and "deter" in state else None
        if batch not in (1, count):
            raise ValueError(f"state: expected batch 1 or {count} (the number of action sequences), got {batch}")
        deter, stoch = self._state(state)
        deter = np.ascontiguousarray(np.broadcast_to(deter, (count, self._deter)))
        stoch = np.ascontiguousarray(np.broadcast_to(stoch, (count, stoch.shape[1])))
        latents = np.empty((count, horizon, self.latent_dim), np.float32)
        for step in range(horizon):
            deter, stoch = self._run("imagine_step", deter=deter, stoch=stoch,
                                     action=np.ascontiguousarray(actions[:, step]))
            latents[:, step, :self._deter], latents[:, step, self._deter:] = deter, stoch
        return latents

    @property
    def draws_on_reference(self) -> bool:
        """Whether decode() takes a `reference` frame to draw on (an export of a model trained with reference_blend)."""
        return "decoder_on_reference" in self._sessions

    def decode(self, latents: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        """latents float32 [..., D] -> images uint8 [..., h, w, 3]. With `reference` uint8 [..., h, w, 3] (the last
        observed frame; only where draws_on_reference), each image is drawn on its reference."""
        latents = _float_array("latents", latents, (*(None,) * (np.ndim(latents) - 1), self.latent_dim))
        if latents.ndim < 2:
            raise ValueError(f"latents: expected shape [..., {self.latent_dim}] with a batch axis, got {latents.shape}")
        flat = np.ascontiguousarray(latents.reshape(-1, self.latent_dim))
        if reference is None:
            (images,) = self._run("decoder", latents=flat)
        else:
            check_array("reference", reference, (*latents.shape[:-1], *self.image_shape), np.uint8)
            if not self.draws_on_reference:
                raise ValueError("reference: this model was trained without reference_blend, so it draws from its "
                                 "latents alone")
            (images,) = self._run("decoder_on_reference", latents=flat,
                                  reference=np.ascontiguousarray(reference.reshape(-1, *self.image_shape)))
        return images.reshape(*latents.shape[:-1], *self.image_shape)

    def latent(self, state: ModelState) -> np.ndarray:
        """The planning latent [deter, stoch]: float32 [B, D]."""
        self._state(state)
        return np.concatenate([state["deter"], state["stoch"]], axis=-1)
