"""Run episodes in parallel worker processes: `simulate(env, policy, episodes, workers)`.

Episode i is seeded with seed + i whatever the worker count, so a run is reproducible
and resumable: with `out`, each worker writes its finished episodes as atomic shards
(hvp.data) and a restarted run skips the ones already saved.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from hvp import data
from hvp.policies import Policy, make_policy

EnvSpec = str | Callable[[], gym.Env]


@dataclass(frozen=True)
class EpisodeSummary:
    index: int
    frames: int
    success: bool


def make_env(spec: EnvSpec, **env_kwargs: Any) -> gym.Env:
    if isinstance(spec, str):
        from hvp.sim import make  # hvp wiring: the playground puts sim pieces together

        return make(spec, **env_kwargs)
    if callable(spec):
        return spec()
    raise TypeError(f"env: expected a registered name or a zero-argument factory, got {spec!r}")


def rollout(env: gym.Env, policy: Policy, seed: int) -> data.Episode:
    """One episode until success or truncation, as a dict in hvp.data's episode layout."""
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    policy.reset(env, rng)
    frames = {"image": [obs["image"]], "state": [obs["state"]], "true_state": [info["true_state"]]}
    actions, rewards = [], [0.0]
    done = False
    while not done:
        action = np.asarray(policy.act(obs, info), np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        actions.append(action)
        rewards.append(reward)
        for key, value in (("image", obs["image"]), ("state", obs["state"]), ("true_state", info["true_state"])):
            frames[key].append(value)
    actions.append(np.zeros_like(actions[0]))  # no action after the final frame
    return {**{k: np.stack(v) for k, v in frames.items()}, "action": np.stack(actions), "reward": np.array(rewards),
            "goal_image": env.unwrapped.goal_image.copy(), "success": bool(info["success"]), "seed": seed}


# -- worker processes: one env and policy per process, built once --------------------------
_worker: dict[str, Any] = {}


def _init_worker(spec: EnvSpec, env_kwargs: dict, policy: str | Policy, out: str | None, env_args: dict) -> None:
    _worker.update(env=make_env(spec, **env_kwargs), policy=make_policy(policy), out=out, env_args=env_args)


def _run_one(job: tuple[int, int]) -> EpisodeSummary | tuple[EpisodeSummary, data.Episode]:
    index, seed = job
    episode = rollout(_worker["env"], _worker["policy"], seed)
    summary = EpisodeSummary(index, len(episode["image"]), episode["success"])
    if _worker["out"] is None:
        return summary, episode
    data.write_part(_worker["out"], index, episode, _worker["env_args"])
    return summary


def _close_worker() -> None:
    if "env" in _worker:
        _worker.pop("env").close()


def simulate(env: EnvSpec, policy: str | Policy = "explore", episodes: int = 10, *, workers: int = 1, seed: int = 0,
             out: str | os.PathLike | None = None, env_kwargs: dict | None = None, progress: bool = True
             ) -> list[data.Episode] | list[EpisodeSummary]:
    """Run `episodes` episodes of `env` (a registered name or a factory) under `policy`.

    Without `out`, returns the episodes (dicts of arrays). With `out`, writes them to that
    HDF5 dataset (resuming a stopped run) and returns one summary per episode run now.
    """
    if episodes < 0 or workers < 1:
        raise ValueError(f"episodes must be >= 0 and workers >= 1 (got {episodes}, {workers})")
    env_kwargs = dict(env_kwargs or {})
    env_args = {"env_name": env if isinstance(env, str) else getattr(env, "__name__", repr(env)),
                "env_kwargs": {k: v for k, v in env_kwargs.items() if isinstance(v, (int, float, str, bool))}}
    done = set(data.finished_indices(out)) if out is not None else set()
    jobs = [(i, seed + i) for i in range(episodes) if i not in done]
    out_path = None if out is None else os.fspath(out)
    results = list(tqdm(_run_jobs(jobs, env, env_kwargs, policy, out_path, env_args, workers), total=len(jobs),
                        desc=f"collect {env_args['env_name']}", unit="ep", disable=not progress))
    if out is not None:
        data.finalize(out, env_args)
        return sorted(results, key=lambda r: r.index)
    return [episode for _, episode in sorted(results, key=lambda r: r[0].index)]


def _run_jobs(jobs, env, env_kwargs, policy, out, env_args, workers) -> Iterator:
    initargs = (env, env_kwargs, policy, out, env_args)
    if workers == 1 or len(jobs) <= 1:
        _init_worker(*initargs)
        try:
            yield from map(_run_one, jobs)
        finally:
            _close_worker()
        return
    # spawn, not fork: a forked child inherits the parent's EGL context and can deadlock in it.
    # So env factories and policy objects must be picklable (module-level) when workers > 1.
    with mp.get_context("spawn").Pool(workers, _init_worker, initargs) as pool:
        yield from pool.imap_unordered(_run_one, jobs)
