"""TorchRuntime: the RSSM behind hvp.contracts.ModelRuntime, numpy in and numpy out.

State: {"deter": float32 [B, deter], "stoch": float32 [B, stoch]} (posterior/prior means, so
the runtime is deterministic like its ONNX twin). Planning latent D = deter + stoch:
latent(state) = [deter, stoch]; encode(image) = latent(observe(initial_state(B), image, zero action)).
"""
from __future__ import annotations

import functools
import os

import numpy as np
import torch

from hvp.contracts import NOT_OBSERVING_ROBOT_STATE, ModelState, Vjp, check_array, check_proprio
from hvp.models.checkpoint import CheckpointError, load_model
from hvp.models.networks import to_float_images, to_uint8_images
from hvp.models.rssm import RSSM


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """None or "auto": CUDA when present, else CPU; anything else is passed to torch.device."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def default_threads() -> int:
    """The cores this process may use (respects CPU affinity, e.g. under taskset or a container)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _float_array(name: str, value: np.ndarray, shape: tuple[int | None, ...]) -> np.ndarray:
    """Like check_array for float32, but accepts any float dtype (planners often hold float64) and casts."""
    if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
        got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise TypeError(f"{name}: expected a float32 numpy array, got {got}")
    return check_array(name, value.astype(np.float32, copy=False), shape, np.float32)


class _Rollout(torch.nn.Module):
    """RSSM.rollout as a module's forward, the shape torch.jit.trace takes."""

    def __init__(self, model: RSSM) -> None:
        super().__init__()
        self.model = model

    def forward(self, deter: torch.Tensor, stoch: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.model.rollout(deter, stoch, actions)


class _Observe(torch.nn.Module):
    """Encoder + RSSM.observe_step as one forward: (h, z, action, uint8 images) -> (h, z)."""

    def __init__(self, model: RSSM) -> None:
        super().__init__()
        self.model = model

    def forward(self, deter: torch.Tensor, stoch: torch.Tensor, actions: torch.Tensor,
                frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.observe_step(deter, stoch, actions, self.model.encoder(to_float_images(frames)))


def _compile(module: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule:
    """Trace, freeze (weights inlined) and optimize for inference (oneDNN-prepacked weights on CPU).

    On one thread, where per-op overhead dominates the small matmuls, this measured ~30% less time per
    imagine() than a frozen trace and half the time of eager observe() (bench/runtime.py)."""
    with torch.no_grad():
        return torch.jit.optimize_for_inference(torch.jit.trace(module.eval(), example))


class TorchRuntime:
    """hvp.contracts.ModelRuntime over a trained RSSM; never mutates a state it is given.

    observe() and imagine() run optimized traces of the model's weights as they are at the first call with a given
    shape (batch, horizon): build a new runtime after changing the weights.
    """

    def __init__(self, model: RSSM, device: str | torch.device | None = None, threads: int | None = None,
                 traced: bool = True) -> None:
        if not isinstance(model, RSSM):
            raise TypeError(f"model: expected an RSSM, got {type(model).__name__}")
        # one thread by default: the planner's batched rollouts are small, and two threads measured 2.7x slower per
        # plan step even on an idle 2-core machine (bench/results/runtime.json); pass threads to override
        self.threads = threads or 1
        torch.set_num_threads(self.threads)  # process-wide in torch: the runtime owns the compute threads
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        config = model.config
        self.image_shape = (*config.image_size, 3)
        self.action_dim = config.action_dim
        self.latent_dim = config.latent_dim
        self._deter = config.deter_dim
        self.traced = traced  # False: observe()/imagine() run the eager model (what bench/runtime.py compares against)
        self._wrappers = {"rollout": _Rollout(self.model), "observe": _Observe(self.model)}
        # one graph per input shape: a trace tuned at batch 128 ran 1.8x slower at batch 1; planners use a few shapes
        self._graphs = functools.lru_cache(maxsize=16)(self._graph)

    def _graph(self, kind: str, specs: tuple[tuple[tuple[int, ...], torch.dtype], ...]) -> torch.jit.ScriptModule:
        """The compiled graph of wrapper `kind` for inputs of these (shape, dtype); tracing unrolls the loop over H."""
        return _compile(self._wrappers[kind], tuple(torch.zeros(shape, dtype=dtype, device=self.device)
                                                    for shape, dtype in specs))

    def _run(self, kind: str, *inputs: torch.Tensor):
        """_Rollout or _Observe on `inputs`, eager or through the compiled graph of their shapes."""
        if not self.traced:
            return self._wrappers[kind](*inputs)
        return self._graphs(kind, tuple((tuple(tensor.shape), tensor.dtype) for tensor in inputs))(*inputs)

    # -- input checks ----------------------------------------------------------------
    def _images(self, images: np.ndarray, batch: tuple[int | None, ...] = (None,),
                name: str = "images") -> torch.Tensor:
        check_array(name, images, (*batch, *self.image_shape), np.uint8)
        return torch.from_numpy(np.ascontiguousarray(images)).to(self.device)

    def _state(self, state: ModelState, batch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(state, dict) or set(state) != {"deter", "stoch"}:
            raise ValueError(f"state: expected a dict with keys ['deter', 'stoch'], got {state!r:.80}")
        rows = batch if batch is not None else state["deter"].shape[0]
        deter = check_array("state['deter']", state["deter"], (rows, self._deter), np.float32)
        stoch = check_array("state['stoch']", state["stoch"], (rows, self.latent_dim - self._deter), np.float32)
        # torch.tensor copies: a caller's arrays can never be written through the runtime
        return torch.tensor(deter, device=self.device), torch.tensor(stoch, device=self.device)

    def _population_state(self, state: ModelState, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch-1 or batch-`count` state -> (h, z) with `count` rows, for imagining `count` action sequences."""
        batch = state["deter"].shape[0] if isinstance(state, dict) and "deter" in state else None
        if batch not in (1, count):
            raise ValueError(f"state: expected batch 1 or {count} (the number of action sequences), got {batch}")
        deter, stoch = self._state(state)
        # expand() gives stride-0 rows that send matmuls down a slow path; materialize them
        return deter.expand(count, -1).contiguous(), stoch.expand(count, -1).contiguous()

    def _numpy(self, tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy()

    # -- ModelRuntime ------------------------------------------------------------------
    def initial_state(self, batch: int) -> ModelState:
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch: expected a positive int, got {batch!r}")
        return {"deter": np.zeros((batch, self._deter), np.float32),
                "stoch": np.zeros((batch, self.latent_dim - self._deter), np.float32)}

    @torch.no_grad()
    def observe(self, state: ModelState, images: np.ndarray, actions: np.ndarray) -> ModelState:
        """state (batch B), images uint8 [B, h, w, 3], actions float32 [B, A] that led to them -> new state."""
        frames = self._images(images)
        batch = frames.shape[0]
        actions = torch.from_numpy(_float_array("actions", actions, (batch, self.action_dim))).to(self.device)
        deter, stoch = self._state(state, batch)
        deter, stoch = self._run("observe", deter, stoch, actions, frames)
        return {"deter": self._numpy(deter), "stoch": self._numpy(stoch)}

    @property
    def observes_robot_state(self) -> bool:
        """Whether the model filters the robot's measured state too (observe_robot_state): then each observe() must be
        followed by observe_proprio(), as the model was trained, or its robot dims hold what the images suggest."""
        return self.model.config.observe_robot_state

    @torch.no_grad()
    def observe_proprio(self, state: ModelState, proprio: np.ndarray) -> ModelState:
        """state (batch B) after observe(), proprio float32 [B, S] measured with that image (obs["state"]) -> new
        state whose robot-state dims hold it (a model trained with observe_robot_state only)."""
        if not self.observes_robot_state:
            raise TypeError(NOT_OBSERVING_ROBOT_STATE)
        deter, stoch = self._state(state)
        proprio = check_proprio(proprio, deter.shape[0], self.model.config.proprio_dim)
        deter = self.model.with_robot_state(deter, torch.from_numpy(proprio).to(self.device))
        return {"deter": self._numpy(deter), "stoch": self._numpy(stoch)}

    def encode(self, images: np.ndarray) -> np.ndarray:
        """images uint8 [B, h, w, 3] -> latents float32 [B, D]: a single image seen from the initial belief."""
        batch = check_array("images", images, (None, *self.image_shape), np.uint8).shape[0]
        zero = np.zeros((batch, self.action_dim), np.float32)
        return self.latent(self.observe(self.initial_state(batch), images, zero))

    @torch.no_grad()
    def imagine(self, state: ModelState, actions: np.ndarray) -> np.ndarray:
        """state (batch 1 or N), actions float32 [N, H, A] -> latents float32 [N, H, D] after each action."""
        actions = _float_array("actions", actions, (None, None, self.action_dim))
        deter, stoch = self._population_state(state, actions.shape[0])
        return self._numpy(self._run("rollout", deter, stoch, torch.from_numpy(actions).to(self.device)))

    def imagine_vjp(self, state: ModelState, actions: np.ndarray) -> tuple[np.ndarray, Vjp]:
        """imagine() through the eager model with autograd on the actions -> (latents float32 [N, H, D],
        vjp: latent_grads float32 [N, H, D] -> action gradients float32 [N, H, A]). For gradient plan refinement."""
        actions = _float_array("actions", actions, (None, None, self.action_dim))
        deter, stoch = self._population_state(state, actions.shape[0])
        inputs = torch.from_numpy(actions).to(self.device).requires_grad_(True)
        with torch.enable_grad():
            latents = self.model.rollout(deter, stoch, inputs)

        def vjp(latent_grads: np.ndarray) -> np.ndarray:
            grads = _float_array("latent_grads", latent_grads, tuple(latents.shape))
            (action_grads,) = torch.autograd.grad(latents, inputs, torch.from_numpy(grads).to(self.device),
                                                  retain_graph=True)
            return self._numpy(action_grads)

        return self._numpy(latents), vjp

    @property
    def draws_on_reference(self) -> bool:
        """Whether decode() takes a `reference` frame to draw on (a model trained with reference_blend)."""
        return self.model.blend is not None

    @torch.no_grad()
    def decode(self, latents: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        """latents float32 [..., D] -> images uint8 [..., h, w, 3]. With `reference` uint8 [..., h, w, 3] (the last
        observed frame; only where draws_on_reference), each image is drawn on its reference."""
        latents = _float_array("latents", latents, (*(None,) * (np.ndim(latents) - 1), self.latent_dim))
        if latents.ndim < 2:
            raise ValueError(f"latents: expected shape [..., {self.latent_dim}] with a batch axis, got {latents.shape}")
        if reference is not None:
            reference = to_float_images(self._images(reference, latents.shape[:-1], "reference"))
        images = self.model.decode(torch.from_numpy(latents).to(self.device), reference)
        return self._numpy(to_uint8_images(images))

    def latent(self, state: ModelState) -> np.ndarray:
        """The planning latent [deter, stoch]: float32 [B, D]."""
        self._state(state)
        return np.concatenate([state["deter"], state["stoch"]], axis=-1)


def load_runtime(run_dir: str, device: str | torch.device | None = None, threads: int | None = None,
                 traced: bool = True) -> TorchRuntime:
    """A TorchRuntime over the RSSM saved in `run_dir` by hvp train."""
    kind, model, _ = load_model(run_dir)
    if kind != "rssm":
        raise CheckpointError(f"run_dir: {run_dir!r} holds a {kind!r} model; a ModelRuntime needs an 'rssm' run")
    return TorchRuntime(model, device=device, threads=threads, traced=traced)
