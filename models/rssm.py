"""PlaNet-style recurrent state-space model (RSSM) over images and actions.

State: deterministic h float32 [B, deter] (GRU) and stochastic z float32 [B, stoch]: Gaussian (PlaNet) or
one-hot categorical groups (DreamerV2; RSSMConfig.latent). Planning latent (D = deter + stoch): [h, mean of z]
(the Gaussian's mean; the categorical's class probabilities), the prior mean when imagining and the posterior
mean when filtering, so imagined and observed latents live in one space. Training samples z (reparameterized;
straight-through gradients for the categorical). With RSSMConfig.proprio_weight, h's last dims hold the robot's own
state, stepped linearly (so free motion is held exactly) plus a bounded correction, and tied in training to the
robot's recorded proprioception; with RSSMConfig.observe_robot_state the filter also observes it. With
RSSMConfig.point_dynamics, h also holds the encoder's keypoints (before the robot state): the filter sets them to the
points the encoder finds in each frame, a small MLP steps them, and the decoder draws them; with
RSSMConfig.points_follow_robot each point also moves by a gated, learned image of the robot state's free step.

Every step function takes and returns its state explicitly, so the encoder, the posterior
step, the prior rollout and the decoder can be exported as separate graphs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Independent, Normal, OneHotCategoricalStraightThrough, kl_divergence

from hvp.models.config import RSSMConfig
from hvp.models.networks import (ConvDecoder, ConvEncoder, GRUCell, ReferenceBlend, foreground_weights,
                                 layer_norm_mlp, mlp, to_float_images)

# categorical: 1 % of uniform mixed into the class probabilities keeps every log-probability and KL finite (DreamerV3)
UNIFORM_MIX = 0.01
KEYPOINT_TIE_WEIGHT = 100.0  # per squared [-1, 1] unit: 16 coordinates each one pixel off cost about 1.6
# the reference blend and the keypoints train on open-loop predictions 1..this many steps ahead, the evaluation's
# horizon (evaluate.py)
OPEN_LOOP_HORIZON = 10
OPEN_LOOP_START_STRIDE = 4  # ... from every 4th filtered state: from every one, training ran ~45 % fewer frames/s here
# the point dynamics: the state dynamics' network (state_dynamics.py), which moves push's block to 0.33x copy-last
# from the same encoder's points (bench/push_ceilings.py)
POINT_STEP_HIDDEN, POINT_STEP_DEPTH = 256, 3
POINT_TIE_WEIGHT = 10.0  # per squared step-standardized coordinate, averaged over coordinates and frames
# standardized robot-state units: a recorded step within this of the fitted free step had no contact (the fit is
# exact there to 1e-7 m; bench/push_diagnostics.py)
FREE_STEP_TOLERANCE = 1e-3
POINT_STEP_MIN_STD = 1e-3  # [-1, 1] units (0.03 px): a point that never moves is not divided by zero


def previous_actions(actions: torch.Tensor) -> torch.Tensor:
    """actions [B, L, A] (action t follows frame t) -> the action that led to each frame (zero before frame 0)."""
    return torch.cat([torch.zeros_like(actions[:, :1]), actions[:, :-1]], dim=1)


def point_step_scale(points: torch.Tensor) -> torch.Tensor:
    """The encoder's points in a batch of windows [B, L, K, 2] (or any series [B, L, F]) -> the std of each
    coordinate's one-step change [2K] (or [F]; held fixed; at least POINT_STEP_MIN_STD)."""
    changes = (points[:, 1:] - points[:, :-1]).detach().flatten(2).flatten(0, 1)
    return changes.std(0).clamp(min=POINT_STEP_MIN_STD)


def point_distance(drawn: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Squared distance of drawn points [B, N, K, 2] to the encoder's, held fixed, summed over points, averaged over
    frames."""
    return ((drawn - points.detach()) ** 2).sum((2, 3)).mean()


@dataclass
class Filtered:
    """One window filtered by RSSM.filter_window: per frame [B, L, ...]."""

    frames: torch.Tensor  # float32 images [B, L, 3, h, w]
    prev: torch.Tensor  # the action that led to each frame [B, L, A]
    deters: torch.Tensor  # h [B, L, deter]
    features: torch.Tensor  # [h, sampled z] [B, L, D]: what the decoder reconstructs from
    prior_params: torch.Tensor  # distribution parameters of z [B, L, P] (RSSM.distribution)
    post_params: torch.Tensor
    post_mean: torch.Tensor  # the posterior's mean of z [B, L, stoch]: the filtered planning latent's z
    points: torch.Tensor | None  # with keypoints: the encoder's image points [B, L, K, 2], else None
    proprio: torch.Tensor | None  # with a robot state: its recorded values, standardized [B, L, S], else None


# the transition's explicit state steps, those the model has (the robot state's, the points'): their gradient is
# clipped apart from the image model's (under one shared clip half the push seeds stayed on the mean-image plateau);
# fine-tuning freezes them with the dynamics
STATE_STEP_MODULES = ("robot_step", "robot_correction", "point_step", "robot_follow")


class RSSM(nn.Module):
    def __init__(self, config: RSSMConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ConvEncoder(config.image_size, config.conv_depth, config.keypoints, config.keypoint_layers,
                                   config.foreground_threshold if config.points_on_foreground else None)
        robot = config.proprio_dim  # h's last dims: the robot's state, stepped linearly
        points = 2 * config.keypoints if config.point_dynamics else 0  # the dims before them: the encoder's points
        self.hidden_size = config.deter_dim - robot - points  # the GRU's
        self.point_dims = (self.hidden_size, self.hidden_size + points) if points else None
        robot_dims = (config.deter_dim - robot, config.deter_dim) if config.robot_points else None
        self.decoder = ConvDecoder(config.latent_dim, config.image_size, config.conv_depth, config.learned_background,
                                   config.keypoints, robot_dims, self.point_dims)
        self.blend = ReferenceBlend() if config.reference_blend else None
        self.input_layer = nn.Sequential(
            nn.Linear(config.stoch_dim + config.action_dim + robot + points, config.hidden_dim), nn.ELU())
        self.cell = GRUCell(config.hidden_dim, self.hidden_size)
        if points:  # after the points' moves: with points_follow_robot their gates, with contact_from_points the
            # robot state's correction
            follow_gates = config.keypoints * config.points_follow_robot
            self.point_step = layer_norm_mlp(points + robot + config.action_dim, POINT_STEP_HIDDEN, POINT_STEP_DEPTH,
                                             points + follow_gates + robot * config.contact_from_points)
            with torch.no_grad():  # the points start still (and the robot state uncorrected)
                self.point_step[-1].weight.zero_()
                self.point_step[-1].bias.zero_()
        if config.points_follow_robot:  # the robot state's step, seen in the image [2] (zero: the points start still)
            self.robot_follow = nn.Linear(robot, 2, bias=False)
            nn.init.zeros_(self.robot_follow.weight)
        params = config.stoch_dim if config.latent == "categorical" else 2 * config.stoch_dim  # logits / mean, std
        self.prior_net = mlp(config.deter_dim, config.hidden_dim, params)
        self.posterior_net = mlp(config.deter_dim + self.encoder.output_dim, config.hidden_dim, params)
        if robot:
            # s' = A s + B a + c (free motion exactly) + a bounded correction (contacts; what the image shows)
            self.robot_step = nn.Linear(robot + config.action_dim, robot)
            with torch.no_grad():
                self.robot_step.weight.zero_()
                self.robot_step.weight[:, :robot].copy_(torch.eye(robot))
                self.robot_step.bias.zero_()
            if not config.contact_from_points:
                self.robot_correction = nn.Linear(self.hidden_size + robot + config.stoch_dim + config.action_dim,
                                                  robot)
                with torch.no_grad():
                    self.robot_correction.weight.mul_(0.01)
                    self.robot_correction.bias.zero_()
            self.robot_step.requires_grad_(not config.robot_step_fit)  # fit once (set_robot_step), then held
            self.register_buffer("proprio_mean", torch.zeros(config.proprio_dim))
            self.register_buffer("proprio_std", torch.ones(config.proprio_dim))

    # -- step functions (explicit state in and out) ----------------------------------
    def initial(self, batch: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """-> (h float32 [B, deter], z float32 [B, stoch]), zeros: the belief before any frame."""
        return (torch.zeros(batch, self.config.deter_dim, device=device),
                torch.zeros(batch, self.config.stoch_dim, device=device))

    def transition(self, deter: torch.Tensor, stoch: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """h [B, deter], z [B, stoch], action [B, A] -> next h [B, deter]."""
        if self.hidden_size == self.config.deter_dim:
            return self.cell(self.input_layer(torch.cat([stoch, action], -1)), deter)
        hidden, points, robot = deter.split([self.hidden_size, deter.shape[-1] - self.hidden_size -
                                             self.config.proprio_dim, self.config.proprio_dim], -1)
        read = robot.detach() if self.config.robot_tie_only else robot  # what the GRU and the points' MLP see
        hidden = self.cell(self.input_layer(torch.cat([stoch, action, read, points], -1)), hidden)
        parts = [hidden]
        if self.point_dims:
            outputs = self.point_step(torch.cat([points, read, action], -1))
            parts.append(points + self.point_moves(outputs, read, action))
        if self.config.proprio_dim:
            if self.config.contact_from_points:
                correction = outputs[..., outputs.shape[-1] - self.config.proprio_dim:]
            else:  # z held fixed here: the ties must not pull the encoder's points onto the robot
                correction = self.robot_correction(torch.cat([hidden, robot, stoch.detach(), action], -1))
            parts.append(self.robot_step(torch.cat([robot, action], -1)) + torch.tanh(correction))
        return torch.cat(parts, -1)

    def point_moves(self, outputs: torch.Tensor, robot: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The points' MLP's outputs [..., O], the robot state [..., S] and the action [..., A] -> the points' move
        [..., 2K]: the MLP's own plus, with points_follow_robot, each point's gate times the image of the robot
        state's free step."""
        size = 2 * self.config.keypoints
        moves = outputs[..., :size]
        if not self.config.points_follow_robot:
            return moves
        gates = torch.sigmoid(outputs[..., size:size + size // 2])
        seen = self.robot_follow(self.robot_step(torch.cat([robot, action], -1)) - robot)
        return moves + (gates[..., None] * seen[..., None, :]).flatten(-2)

    def free_motion_residual(self, window: Filtered) -> torch.Tensor:
        """With points_follow_robot: the squared move of the points' MLP's own part, in units of each coordinate's step
        (point_step_scale), averaged over the window's steps on which the recorded robot state moved as its fitted
        free step says (no contact). There the objects rest and the points on the robot move with it, so the gated
        image of the robot's step must explain every move (the points' tie trains that image); trains the MLP. With
        contact_from_points the MLP's correction of the robot state counts too, in units of the state's steps: there
        is no contact to correct, and a correction that leaks moves the robot state and every point that follows it."""
        robot, actions = window.proprio[:, :-1], window.prev[:, 1:]
        free = (window.proprio[:, 1:] - self.robot_step(torch.cat([robot, actions], -1))).abs().amax(-1)
        points = window.points[:, :-1].flatten(-2).detach()
        outputs = self.point_step(torch.cat([points, robot, actions], -1))
        squared = ((outputs[..., :points.shape[-1]] / point_step_scale(window.points)) ** 2).mean(-1)
        if self.config.contact_from_points:
            correction = torch.tanh(outputs[..., outputs.shape[-1] - self.config.proprio_dim:])
            squared = squared + ((correction / point_step_scale(window.proprio)) ** 2).mean(-1)
        is_free = (free < FREE_STEP_TOLERANCE).float()
        return (squared * is_free).sum() / is_free.sum().clamp(min=1.0)

    def with_points(self, deter: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
        """h [B, deter] with its point dims set to the points the encoder found in the frame (the embedding's last 2K
        dims): what a model with point_dynamics filters after each frame."""
        start, stop = self.point_dims
        return torch.cat([deter[:, :start], embed[:, -(stop - start):], deter[:, stop:]], -1)

    def read_robot(self, latents: torch.Tensor) -> torch.Tensor:
        """h or planning latents [..., deter (+ stoch)] as the networks that read them see them: with robot_tie_only
        the robot state's dims pass no gradient back, so only its ties train its dynamics."""
        if not self.config.robot_tie_only:
            return latents
        start, stop = self.config.deter_dim - self.config.proprio_dim, self.config.deter_dim
        return torch.cat([latents[..., :start], latents[..., start:stop].detach(), latents[..., stop:]], -1)

    def prior(self, deter: torch.Tensor) -> torch.Tensor:
        """h [B, deter] -> parameters [B, P] of z's distribution before seeing the frame."""
        return self.prior_net(self.read_robot(deter))

    def posterior(self, deter: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
        """h [B, deter], image embedding [B, E] -> parameters [B, P] of z's distribution after seeing the frame."""
        return self.posterior_net(torch.cat([self.read_robot(deter), embed], -1))

    # -- z's distribution, from the parameters [..., P] that prior and posterior give -------------------
    def _gaussian(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw_std = params.chunk(2, dim=-1)
        return mean, F.softplus(raw_std) + self.config.min_std

    def _class_probs(self, params: torch.Tensor) -> torch.Tensor:
        """Categorical logits [..., stoch] -> class probabilities [..., groups, classes]."""
        probs = torch.softmax(params.unflatten(-1, (-1, self.config.classes)), -1)
        return (1 - UNIFORM_MIX) * probs + UNIFORM_MIX / self.config.classes

    def distribution(self, params: torch.Tensor) -> Distribution:
        """The distribution of z; its events are z [..., stoch] (Gaussian) or z's groups [..., groups, classes]."""
        if self.config.latent == "categorical":
            groups = OneHotCategoricalStraightThrough(probs=self._class_probs(params), validate_args=False)
            return Independent(groups, 1)
        return Independent(Normal(*self._gaussian(params), validate_args=False), 1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The mean of z [..., stoch]: what the planning latent holds."""
        if self.config.latent == "categorical":
            return self._class_probs(params).flatten(-2)
        return self._gaussian(params)[0]

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        """A reparameterized sample of z [..., stoch] (straight-through gradients for the categorical)."""
        return self.distribution(params).rsample().reshape(*params.shape[:-1], self.config.stoch_dim)

    def kl(self, params_a: torch.Tensor, params_b: torch.Tensor) -> torch.Tensor:
        """KL(a || b) of two distributions of z, parameters [..., P] -> [...]."""
        return kl_divergence(self.distribution(params_a), self.distribution(params_b))

    def observe_step(self, deter: torch.Tensor, stoch: torch.Tensor, action: torch.Tensor,
                     embed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One deterministic filter step: -> (h', posterior mean of z') [B, deter], [B, stoch]."""
        deter = self.transition(deter, stoch, action)
        stoch = self.mean(self.posterior(deter, embed))
        return (deter if self.point_dims is None else self.with_points(deter, embed)), stoch

    def rollout(self, deter: torch.Tensor, stoch: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Prior-mean rollout: h [N, deter], z [N, stoch], actions [N, H, A] -> latents float32 [N, H, D]."""
        latents = []
        for t in range(actions.shape[1]):
            deter = self.transition(deter, stoch, actions[:, t])
            stoch = self.mean(self.prior(deter))
            latents.append(torch.cat([deter, stoch], -1))
        return torch.stack(latents, 1)

    def decode(self, latents: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """latents float32 [..., D] -> images float32 [..., 3, h, w] in about [-0.5, 0.5]. With `reference` float32
        [..., 3, h, w] (a model with reference_blend only), each image is drawn on its reference frame."""
        flat = self.decoder(self.read_robot(latents).reshape(-1, latents.shape[-1]))
        if reference is not None:
            if self.blend is None:
                raise ValueError("reference: this model was trained without reference_blend, so it draws from its "
                                 "latents alone")
            flat = self.blend(flat, reference.reshape(flat.shape))
        return flat.reshape(*latents.shape[:-1], *flat.shape[1:])

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """images float32 [B, L, 3, h, w] -> embeddings [B, L, E]."""
        return self.encoder(images.flatten(0, 1)).unflatten(0, images.shape[:2])

    # -- training ----------------------------------------------------------------------
    def set_proprio_scale(self, states: torch.Tensor) -> None:
        """Recorded robot states float [N, S] from many episodes -> the proprio tie standardizes by their mean and
        std (a model with a robot state only)."""
        if not self.config.proprio_dim:
            raise ValueError("set_proprio_scale: this model was built without a robot state (proprio_weight)")
        if states.ndim != 2 or states.shape[1] != self.config.proprio_dim:
            raise ValueError(f"states: expected [N, {self.config.proprio_dim}], got {list(states.shape)}")
        self.proprio_mean.copy_(states.mean(0))
        self.proprio_std.copy_(states.std(0).clamp(min=1e-6))

    def set_robot_step(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """The robot state's linear step s' = weight [s, a] + bias, on standardized states: weight float [S, S + A],
        bias float [S] (models/free_motion.py fits them)."""
        if not self.config.proprio_dim:
            raise ValueError("set_robot_step: this model was built without a robot state (proprio_weight)")
        if tuple(weight.shape) != tuple(self.robot_step.weight.shape) or tuple(bias.shape) != tuple(
                self.robot_step.bias.shape):
            raise ValueError(f"weight, bias: expected {list(self.robot_step.weight.shape)} and "
                             f"{list(self.robot_step.bias.shape)}, got {list(weight.shape)} and {list(bias.shape)}")
        with torch.no_grad():
            self.robot_step.weight.copy_(weight)
            self.robot_step.bias.copy_(bias)

    def with_robot_state(self, deter: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """h [B, deter] with its robot-state dims replaced by the measured state float [B, S] (standardized here): what
        a model with observe_robot_state filters after each frame."""
        robot = (states.float() - self.proprio_mean) / self.proprio_std
        return torch.cat([deter[:, :-self.config.proprio_dim], robot], -1)

    def forward(self, images: torch.Tensor, actions: torch.Tensor,
                states: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Negative ELBO of a window: images uint8 [B, L, h, w, 3], actions float32 [B, L, A], and with
        a robot state (proprio_weight) its recorded values float [B, L, S] -> (loss, metrics)."""
        return self.elbo(self.filter_window(images, actions, states))

    def filter_window(self, images: torch.Tensor, actions: torch.Tensor,
                      states: torch.Tensor | None = None) -> Filtered:
        """Filter a window with sampled latents (reparameterized), keeping what the losses need."""
        if self.config.proprio_dim and states is None:
            raise ValueError("states: this model holds a robot state (proprio_weight), so it needs the robot's "
                             "recorded states [B, L, S] beside the images and actions")
        frames = to_float_images(images)
        embeds = self.embed(frames)
        prev = previous_actions(actions)
        deter, stoch = self.initial(images.shape[0], images.device)
        deters, features, prior_params, post_params = [], [], [], []
        for t in range(images.shape[1]):
            deter = self.transition(deter, stoch, prev[:, t])
            prior_params.append(self.prior(deter))
            post_params.append(self.posterior(deter, embeds[:, t]))
            stoch = self.sample(post_params[-1])
            if self.point_dims:  # after the posterior, as observe_step
                deter = self.with_points(deter, embeds[:, t])
            if self.config.observe_robot_state:  # after the posterior, as the runtime's observe_proprio follows observe
                deter = self.with_robot_state(deter, states[:, t])
            deters.append(deter)
            features.append(torch.cat([deter, stoch], -1))
        post = torch.stack(post_params, 1)
        points = embeds[..., -2 * self.config.keypoints:].unflatten(-1, (-1, 2)) if self.config.keypoints else None
        proprio = (states.float() - self.proprio_mean) / self.proprio_std if self.config.proprio_dim else None
        return Filtered(frames, prev, torch.stack(deters, 1), torch.stack(features, 1), torch.stack(prior_params, 1),
                        post, self.mean(post), points, proprio)

    def elbo(self, window: Filtered) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Negative ELBO (plus latent overshooting when configured) of a filtered window -> (loss, metrics)."""
        config = self.config
        # reconstruction, up-weighted on the objects
        weights = foreground_weights(window.frames, config.foreground_weight, config.foreground_threshold,
                                     config.foreground_reference)
        reconstruction = ((self.decode(window.features) - window.frames) ** 2 * weights).sum((2, 3, 4)).mean()
        # KL balancing with free nats: train the prior toward the posterior more than the reverse
        post, prior = window.post_params, window.prior_params
        prior_kl = self.kl(post.detach(), prior)
        posterior_kl = self.kl(post, prior.detach())
        kl = (config.kl_balance * prior_kl.clamp(min=config.free_nats).mean()
              + (1 - config.kl_balance) * posterior_kl.clamp(min=config.free_nats).mean())
        loss = reconstruction + config.kl_scale * kl
        metrics = {"loss": loss, "reconstruction": reconstruction, "kl": prior_kl.mean()}  # "loss": the total, below
        if window.points is not None and self.point_dims is None:  # with point dynamics h holds the points themselves
            metrics["keypoint_tie"] = self.keypoint_tie(window.features, window.points)
            loss = loss + KEYPOINT_TIE_WEIGHT * metrics["keypoint_tie"]
        if config.robot_points:
            metrics["robot_point_tie"] = self.robot_point_tie(window.proprio, window.points)
            loss = loss + KEYPOINT_TIE_WEIGHT * metrics["robot_point_tie"]
        if window.proprio is not None and not config.observe_robot_state:  # observed, the filtered state is exact
            metrics["proprio_tie"] = self.proprio_tie(torch.cat([window.deters, window.post_mean], -1), window.proprio)
            loss = loss + config.proprio_weight * metrics["proprio_tie"]
        if self.blend is not None or window.points is not None or window.proprio is not None:
            metrics.update(self.open_loop_terms(window, weights))
            loss = loss + metrics.get("blend_reconstruction", 0.0)
            loss = loss + KEYPOINT_TIE_WEIGHT * metrics.get("open_loop_keypoint_tie", 0.0)
            loss = loss + config.proprio_weight * metrics.get("open_loop_proprio_tie", 0.0)
            loss = loss + POINT_TIE_WEIGHT * metrics.get("open_loop_point_tie", 0.0)
        if config.points_follow_robot:
            metrics["free_motion_residual"] = self.free_motion_residual(window)
            loss = loss + POINT_TIE_WEIGHT * metrics["free_motion_residual"]
        if config.overshooting:
            metrics["overshooting_kl"] = self.overshooting_kl(window.deters, window.post_mean, post, window.prev)
            loss = loss + config.overshooting_scale * metrics["overshooting_kl"]
        metrics["loss"] = loss
        return loss, {name: value.detach() for name, value in metrics.items()}

    def keypoint_tie(self, latents: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Squared distance between the points the decoder reads from latents [B, N, D] and those the encoder found
        in the frames they stand for, points [B, N, K, 2], summed over points, averaged over frames. The encoder's
        side is held fixed, so its points cannot collapse onto whatever the latent carries: the latent learns to
        carry the encoder's points, linearly."""
        drawn = self.decoder.keypoints(self.read_robot(latents).flatten(0, 1)).unflatten(0, latents.shape[:2])
        return point_distance(drawn, points)

    def robot_point_tie(self, proprio: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """keypoint_tie for the points the decoder reads from the robot state, given the recorded one (standardized)
        [B, N, S]: a linear map from the state cannot follow the encoder's cell-sized steps, so it learns where the
        robot is seen, and the points it cannot explain (another object's) are left for the convs to ignore."""
        drawn = self.decoder.robot_points(proprio.flatten(0, 1)).unflatten(0, proprio.shape[:2])
        return point_distance(drawn, points)

    def proprio_tie(self, latents: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """Squared error of the robot state held in planning latents [B, N, D] (h's last proprio_dim dims) against the
        recorded one (standardized) [B, N, S], summed over its dims, averaged over frames."""
        robot = latents[..., self.config.deter_dim - self.config.proprio_dim:self.config.deter_dim]
        return ((robot - proprio) ** 2).sum(-1).mean()

    def open_loop_terms(self, window: Filtered, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        """Losses on open-loop predictions, as evaluation and the planner roll them: prior means rolled d steps (d
        uniform in 1..OPEN_LOOP_HORIZON, one per update) from every OPEN_LOOP_START_STRIDE-th filtered state t.
        With reference_blend, "blend_reconstruction": each drawn on frame t, the reconstruction loss against frame
        t + d (weights [B, L, 1, h, w] from foreground_weights). With keypoints, "open_loop_keypoint_tie": their
        points against those the encoder finds in frame t + d, so the dynamics learn to move the points. With a robot
        state, "open_loop_proprio_tie": its proprio_tie at every step 1..d, rolled from the same filtered states held
        fixed, so it trains the dynamics and not what the encoder finds; with point dynamics, "open_loop_point_tie"
        likewise for the points h carries (point_tie)."""
        length, stride = window.frames.shape[1], OPEN_LOOP_START_STRIDE
        horizon = int(torch.randint(1, min(OPEN_LOOP_HORIZON, length - 1) + 1, ()))
        terms = {}
        keypoint_tie = window.points is not None and self.point_dims is None
        if self.blend is not None or keypoint_tie:  # both read the rollout's last step only
            *_, (step, deter, stoch, _) = self.open_loop(window.deters, window.post_mean, window.prev, horizon, stride)
            latents = torch.cat([deter, stoch], -1)
            if self.blend is not None:
                drawn = self.decode(latents, window.frames[:, :length - step:stride])
                error = (drawn - window.frames[:, step::stride]) ** 2 * weights[:, step::stride]
                terms["blend_reconstruction"] = error.sum((2, 3, 4)).mean()
            if keypoint_tie:
                terms["open_loop_keypoint_tie"] = self.keypoint_tie(latents, window.points[:, step::stride])
        if window.proprio is None and self.point_dims is None:
            return terms
        # every step 1..d from the same starts, held fixed: trains the dynamics
        rolled = list(self.open_loop(window.deters.detach(), window.post_mean.detach(), window.prev, horizon, stride))
        if window.proprio is not None:
            terms["open_loop_proprio_tie"] = torch.stack([
                self.proprio_tie(torch.cat([deter, stoch], -1), window.proprio[:, step::stride])
                for step, deter, stoch, _ in rolled]).mean()
        if self.point_dims:
            scale = point_step_scale(window.points)
            terms["open_loop_point_tie"] = torch.stack([
                self.point_tie(deter, window.points[:, step::stride], scale) for step, deter, _, _ in rolled]).mean()
        return terms

    def point_tie(self, deters: torch.Tensor, points: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Squared error of the points rolled in h [B, N, deter] against those the encoder found in the frames they
        stand for [B, N, K, 2] (held fixed), each coordinate in units of its step's scale [2K] (point_step_scale),
        averaged: the state dynamics' loss, so a block that rarely moves is learned as carefully as the robot."""
        start, stop = self.point_dims
        return (((deters[..., start:stop] - points.flatten(-2).detach()) / scale) ** 2).mean()

    def open_loop(self, deters: torch.Tensor, post_mean: torch.Tensor, prev: torch.Tensor, horizon: int,
                  stride: int = 1) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Prior means rolled d = 1..horizon steps from every stride-th filtered state t (0, stride, ...) of a window
        with t + d in it (the planner's rollout) -> yields (d, h [B, S, deter], prior mean [B, S, stoch], prior
        parameters [B, S, P]): entry i has rolled from frame i * stride to frame i * stride + d. deters [B, L, deter],
        post_mean [B, L, stoch], prev [B, L, A]."""
        length = deters.shape[1]
        deter, stoch = deters[:, :-1:stride], post_mean[:, :-1:stride]  # [B, starts, .]: starts t < L - 1
        for step in range(1, min(horizon, length - 1) + 1):
            reach = -(-(length - step) // stride)  # starts t < L - step still have frame t + step in the window
            deter, stoch = deter[:, :reach], stoch[:, :reach]
            deter = self.transition(deter.flatten(0, 1), stoch.flatten(0, 1),
                                    prev[:, step::stride].flatten(0, 1)).unflatten(0, (-1, reach))
            params = self.prior(deter)
            stoch = self.mean(params)
            yield step, deter, stoch, params

    def overshooting_kl(self, deters: torch.Tensor, post_mean: torch.Tensor, post_params: torch.Tensor,
                        prev: torch.Tensor) -> torch.Tensor:
        """Mean KL(posterior at t + d || prior mean-rolled d steps from the filtered state at t), d = 1..overshooting,
        over every start t with t + d in the window (free nats as for one step). deters [B, L, deter], posterior
        means [B, L, stoch] and parameters [B, L, P], prev [B, L, A] (the action that led to each frame)."""
        total, count = deters.new_zeros(()), 0
        for step, _, _, params in self.open_loop(deters, post_mean, prev, self.config.overshooting):
            kl = self.kl(post_params[:, step:].detach(), params)
            total, count = total + kl.clamp(min=self.config.free_nats).sum(), count + kl.numel()
        return total / count

    # -- open-loop prediction ----------------------------------------------------------
    @torch.no_grad()
    def predict_video(self, images: torch.Tensor, actions: torch.Tensor, context: int,
                      states: torch.Tensor | None = None) -> torch.Tensor:
        """Filter `context` frames, then imagine the rest: images uint8 [B, L, h, w, 3], actions float32 [B, L, A]
        -> predicted frames float32 [B, L - context, 3, h, w] (drawn on the last context frame with reference_blend).
        A model with observe_robot_state also observes the robot's recorded states float [B, L, S]."""
        if self.config.observe_robot_state and states is None:
            raise ValueError("states: this model observes its robot state (observe_robot_state), so it needs the "
                             "robot's recorded states [B, L, S] beside the images and actions")
        frames = to_float_images(images[:, :context])
        embeds = self.embed(frames)
        prev = previous_actions(actions)
        deter, stoch = self.initial(images.shape[0], images.device)
        for t in range(context):
            deter, stoch = self.observe_step(deter, stoch, prev[:, t], embeds[:, t])
            if self.config.observe_robot_state:
                deter = self.with_robot_state(deter, states[:, t])
        latents = self.rollout(deter, stoch, actions[:, context - 1:-1])
        reference = None if self.blend is None else frames[:, -1:].expand(-1, latents.shape[1], -1, -1, -1)
        return self.decode(latents, reference)
