"""Reachability: the temporal-distance model refined on the low-level controller's own outcomes.

The distance learned from exploration data (fit_distance.py) predicts how many steps the
*exploration* took between two observations. The hierarchy needs how many steps *its
controller* takes, and whether it arrives at all: a target 20 exploration steps away
behind a wall can be out of the controller's reach (it presses into the wall). So the
controller is aimed at targets (hvp.reachability.collect_outcomes records where and when
it arrives) and the distance is fine-tuned on those outcomes.

A metric cannot say this: exploration chains of short hops bound it from above (triangle
inequality), whatever the controller does. So the refined model is the metric plus a
non-negative detour, an MLP on the two embeddings (TemporalDistanceConfig.detour_hidden),
reach(a, b) = ||phi(a) - phi(b)|| + detour(a, b), trained with:

- reached after s steps: log(1 + reach) regressed to log(1 + s);
- not reached within the budget B: hinge reach >= B + margin (a lower bound: more than B, maybe never);
- the original metric objective on dataset pairs (fit_distance.metric_loss) on the metric part,
  so the embedding stays a metric and keeps what the outcomes do not cover.

    outcomes = Outcomes(start, target, steps, reached, budget=25)   # latents float32 [M, D], [M, D]; [M]; [M]
    net = refine_reachability(net, outcomes, dataset_latents, ReachabilityConfig())
    score_reachability(TorchDistance(net), held_out_outcomes)        # before/after: how predictions match outcomes
"""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch

from hvp.config import Config, require
from hvp.contracts import Distance
from hvp.models.fit_distance import DistanceTrainConfig, EpisodeLatents, metric_loss, spearman, train_steps
from hvp.models.temporal_distance import TemporalDistanceNet


@dataclasses.dataclass(frozen=True)
class ReachabilityConfig(Config):
    """Fine-tuning of a temporal-distance model on controller outcomes."""

    steps: int = 600  # optimizer updates
    batch_size: int = 128  # outcomes per update (and pairs per dataset-metric term)
    learning_rate: float = 3e-4  # of the embedding: below the distance's own, a correction, not a new model
    detour_learning_rate: float = 3e-3  # of the detour MLP, which starts from nothing
    outcome_weight: float = 4.0  # weight of the outcome terms beside the dataset metric loss
    unreached_margin: float = 5.0  # an unreached target is pushed to at least budget + margin steps
    detour_hidden: int = 16  # width of the detour MLP added to a distance that has none (64 overfit 300 attempts)
    seed: int = 0

    def validate(self) -> None:
        for name in ("steps", "batch_size", "detour_hidden"):
            require(getattr(self, name) >= 1, "ReachabilityConfig.{} must be >= 1 (got {})", name, getattr(self, name))
        for name in ("learning_rate", "detour_learning_rate"):
            require(getattr(self, name) > 0, "ReachabilityConfig.{} must be > 0 (got {})", name, getattr(self, name))
        for name in ("outcome_weight", "unreached_margin"):
            require(getattr(self, name) >= 0, "ReachabilityConfig.{} must be >= 0 (got {})", name, getattr(self, name))


ReachabilityConfig.PRESETS = {"debug": dict(steps=50, batch_size=32), "cpu": {}, "gpu": dict(steps=3000)}


@dataclasses.dataclass(frozen=True)
class Outcomes:
    """The controller aimed from `start` at `target`: reached after `steps`, or not within `budget`."""

    start: np.ndarray  # float32 [M, D]: encode() of the image the controller started from
    target: np.ndarray  # float32 [M, D]: encode() of the target image it was aimed at
    steps: np.ndarray  # float32 [M]: control steps until reached (the budget where not reached)
    reached: np.ndarray  # bool [M]
    budget: int  # control steps each attempt was allowed

    def __post_init__(self) -> None:
        count = len(self.steps)
        if self.start.shape != self.target.shape or len(self.start) != count or self.reached.shape != (count,):
            raise ValueError(f"Outcomes: expected start, target [M, D] and steps, reached [M] with one M; got "
                             f"{self.start.shape}, {self.target.shape}, {self.steps.shape}, {self.reached.shape}")
        if count == 0:
            raise ValueError("Outcomes: expected at least one outcome, got none")

    def subset(self, rows: np.ndarray) -> "Outcomes":
        return Outcomes(self.start[rows], self.target[rows], self.steps[rows], self.reached[rows], self.budget)


def outcome_loss(net: TemporalDistanceNet, outcomes: Outcomes, rng: np.random.Generator,
                 config: ReachabilityConfig) -> torch.Tensor:
    """Regression to the steps taken where reached, a lower-bound hinge where not (module docstring)."""
    rows = rng.integers(len(outcomes.steps), size=config.batch_size)
    predicted = net.reach_steps(torch.from_numpy(outcomes.start[rows]), torch.from_numpy(outcomes.target[rows]))
    steps, reached = torch.from_numpy(outcomes.steps[rows]), torch.from_numpy(outcomes.reached[rows])
    regression = (torch.log1p(predicted) - torch.log1p(steps)) ** 2
    floor = torch.log1p(torch.tensor(float(outcomes.budget) + config.unreached_margin))
    lower_bound = torch.relu(floor - torch.log1p(predicted)) ** 2
    return torch.where(reached, regression, lower_bound).mean()


def refine_reachability(net: TemporalDistanceNet, outcomes: Outcomes, dataset: EpisodeLatents,
                        config: ReachabilityConfig, metric: DistanceTrainConfig | None = None,
                        progress: bool = True, threads: int = 1) -> TemporalDistanceNet:
    """A copy of `net`, given a detour if it has none, fine-tuned on `outcomes` beside its dataset objective on
    `dataset`; returned in eval mode (the given net is not changed)."""
    if outcomes.start.shape[1] != net.config.latent_dim:
        raise ValueError(f"outcomes: expected latents of D = {net.config.latent_dim} (the distance's), "
                         f"got {outcomes.start.shape[1]}")
    torch.set_num_threads(threads)
    torch.manual_seed(config.seed)
    rng, metric = np.random.default_rng(config.seed), metric or DistanceTrainConfig()
    refined = copy.deepcopy(net)
    if refined.detour_net is None:
        with_detour = TemporalDistanceNet(dataclasses.replace(net.config, detour_hidden=config.detour_hidden))
        missing, unexpected = with_detour.load_state_dict(net.state_dict(), strict=False)
        assert not unexpected and all(key.startswith("detour_net.") for key in missing), (missing, unexpected)
        refined = with_detour
    refined.train()
    detour = list(refined.detour_net.parameters())
    rest = [parameter for name, parameter in refined.named_parameters() if not name.startswith("detour_net.")]
    optimizer = torch.optim.AdamW([{"params": rest, "lr": config.learning_rate},
                                   {"params": detour, "lr": config.detour_learning_rate}],
                                  weight_decay=metric.weight_decay)

    def loss() -> torch.Tensor:
        return (config.outcome_weight * outcome_loss(refined, outcomes, rng, config)
                + metric_loss(refined, dataset, rng, metric))

    train_steps(loss, optimizer, config.steps, "refine reachability", progress=progress)
    return refined.eval()


def score_reachability(distance: Distance, outcomes: Outcomes) -> dict[str, float]:
    """How a distance's predictions match the controller's outcomes:

    reach_accuracy: share of attempts where "predicted <= budget" agrees with "reached";
    reach_auc: chance that an unreached attempt is predicted farther than a reached one (threshold-free; 0.5 = blind);
    spearman: rank correlation of predicted steps with the steps taken, an unreached attempt ranked past every
    reached one; mae_reached_steps: mean |predicted - taken| over reached attempts.
    """
    predicted = np.asarray(distance.steps(outcomes.start, outcomes.target), np.float64)
    taken = np.where(outcomes.reached, outcomes.steps, 4.0 * outcomes.budget)  # unreached: ranked last
    reached = outcomes.reached
    unreached = predicted[~reached]
    auc = (float(np.mean(unreached[:, None] > predicted[reached][None, :])
                 + 0.5 * np.mean(unreached[:, None] == predicted[reached][None, :]))
           if reached.any() and (~reached).any() else float("nan"))
    return {"reach_accuracy": float(np.mean((predicted <= outcomes.budget) == reached)), "reach_auc": auc,
            "spearman": spearman(predicted, taken) if len(np.unique(taken)) > 1 else float("nan"),
            "mae_reached_steps": float(np.mean(np.abs(predicted[reached] - outcomes.steps[reached])))
            if reached.any() else float("nan"),
            "predicted_median_reached": float(np.median(predicted[reached])) if reached.any() else float("nan"),
            "predicted_median_unreached": float(np.median(predicted[~reached])) if (~reached).any() else float("nan"),
            "attempts": int(len(reached)), "reached": int(reached.sum())}
