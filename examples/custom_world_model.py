"""Bring your own world model: a tiny MLP latent model trained on hvp-collected maze-easy data, registered in
hvp.extension.MODELS (its contract probed) and planned on with hvp's latent MPC: `python examples/custom_world_model.py`
"""
import argparse

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import hvp.playground as wm
from hvp.agent import evaluate
from hvp.data import TrajectoryDataset
from hvp.extension import make_model, register_model
from hvp.sim import make

POOL = 4  # the model sees 64x64 frames average-pooled to 16x16


def pooled(images: np.ndarray) -> torch.Tensor:  # uint8 [..., 64, 64, 3] -> float [..., 768] in [0, 1]
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div(255).movedim(-1, -3).flatten(0, -4)
    return F.avg_pool2d(x, POOL).movedim(-3, -1).reshape(*images.shape[:-3], -1)


class TinyRuntime:
    """hvp.contracts.ModelRuntime: encoder pixels -> z, dynamics z' = z + f(z, a), decoder z -> pixels; state {"z"}."""

    image_shape, action_dim, latent_dim = (64, 64, 3), 2, 16

    def __init__(self) -> None:
        mlp = lambda i, o: nn.Sequential(nn.Linear(i, 128), nn.ELU(), nn.Linear(128, o))  # noqa: E731
        self.encoder, self.dynamics = mlp(16 * 16 * 3, self.latent_dim), mlp(self.latent_dim + 2, self.latent_dim)
        self.decoder = nn.Sequential(mlp(self.latent_dim, 16 * 16 * 3), nn.Sigmoid())
        self.parameters = [p for m in (self.encoder, self.dynamics, self.decoder) for p in m.parameters()]

    def step(self, z, action):
        return z + self.dynamics(torch.cat([z, action], -1))

    def initial_state(self, batch):
        return {"z": np.zeros((batch, self.latent_dim), np.float32)}

    @torch.no_grad()
    def encode(self, images):
        return self.encoder(pooled(images)).numpy()

    def observe(self, state, images, actions):  # the camera sees the whole maze: no memory needed
        return {"z": self.encode(images)}

    def latent(self, state):
        return state["z"]

    @torch.no_grad()
    def imagine(self, state, actions):
        z, latents = torch.from_numpy(state["z"]).expand(len(actions), -1), []
        for action in torch.from_numpy(actions).unbind(1):
            latents.append(z := self.step(z, action))
        return torch.stack(latents, 1).numpy()

    @torch.no_grad()
    def decode(self, latents):  # 16x16 predictions shown at 64x64
        small = self.decoder(torch.from_numpy(latents)).reshape(*latents.shape[:-1], 16, 16, 3)
        return (small.repeat_interleave(POOL, -3).repeat_interleave(POOL, -2) * 255).round().byte().numpy()


def train(model: TinyRuntime, data: TrajectoryDataset, steps: int, length: int = 6) -> float:
    """Reconstruct each frame and predict the encodings of the next `length - 1` frames open loop."""
    optimizer, rng = torch.optim.Adam(model.parameters, lr=1e-3), np.random.default_rng(0)
    for _ in range(steps):
        batch = data.sample_windows(rng, 32, length)
        pixels, actions = pooled(batch["image"]), torch.from_numpy(batch["action"])
        z = model.encoder(pixels)
        loss, imagined = ((model.decoder(z) - pixels) ** 2).mean(), z[:, 0]
        for t in range(length - 1):
            imagined = model.step(imagined, actions[:, t])
            loss = loss + ((imagined - z[:, t + 1].detach()) ** 2).mean() / (length - 1)
        optimizer.zero_grad(), loss.backward(), optimizer.step()
    return loss.item()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="tiny sizes: a smoke run in seconds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    episodes, steps, evals, max_steps = (4, 30, 1, 5) if args.debug else (60, 1500, 10, 60)
    collected = wm.simulate("maze-easy", "explore", episodes, env_kwargs={"max_steps": 40}, progress=False)
    model = TinyRuntime()
    print(f"trained {steps} steps, final loss {train(model, TrajectoryDataset(collected, {}), steps):.4f}")
    register_model("tiny-mlp", lambda: model)  # a factory: it could as well load saved weights
    # make_model probes every contract method once: mistakes surface here, not mid-episode
    controller = wm.mpc_controller(make_model("tiny-mlp"), "cem", "latent", preset="debug" if args.debug else "cpu")
    with make("maze-easy", max_steps=max_steps) as env:
        summary = evaluate(env, controller, episodes=evals, seed=100, progress=False)
    print(f"tiny-mlp + CEM on maze-easy: success {summary['successes']}/{summary['episodes']}, "
          f"act() {summary['step_ms_median']:.1f} ms median")
