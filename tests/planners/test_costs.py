import numpy as np
import pytest

from hvp.planners.costs import ActionMagnitude, ActionSmoothness, LatentDistance, PixelMSE, StateCost, \
    TemporalDistance, WeightedSum, step_weights


def rollout(population=3, horizon=4, latent_dim=4, action_dim=2, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, (population, horizon, latent_dim)).astype(np.float32),
            rng.uniform(-1, 1, (population, horizon, action_dim)).astype(np.float32),
            rng.uniform(-1, 1, latent_dim).astype(np.float32))


def test_step_weights_last_and_discounted_all():
    np.testing.assert_array_equal(step_weights(3, "last", 1.0), [0, 0, 1])
    np.testing.assert_allclose(step_weights(3, "all", 1.0), [1 / 3] * 3)
    np.testing.assert_allclose(step_weights(3, "all", 0.5), np.array([0.25, 0.5, 1]) / 1.75)
    with pytest.raises(ValueError, match="weighting: expected one of"):
        step_weights(3, "first", 1.0)
    with pytest.raises(ValueError, match=r"discount: expected a value in \(0, 1\], got 0"):
        step_weights(3, "all", 0)


def test_latent_distance_last_step_and_all_steps():
    latents, actions, target = rollout()
    squared = np.sum((latents - target) ** 2, axis=-1)
    np.testing.assert_allclose(LatentDistance()(latents, actions, target), squared[:, -1], rtol=1e-6)
    np.testing.assert_allclose(LatentDistance("all")(latents, actions, target), squared.mean(axis=1), rtol=1e-6)
    with pytest.raises(ValueError, match=r"target: expected shape \(4,\)"):
        LatentDistance()(latents, actions, target[:2])


def test_pixel_mse_compares_decoded_frames_with_the_decoded_target(linear_runtime):
    latents, actions, target = rollout()
    latents[1, -1] = target  # sample 1 ends exactly on the target
    cost = PixelMSE(linear_runtime)(latents, actions, target)
    frames = linear_runtime.decode(latents[:, -1]).astype(float) / 255
    goal = linear_runtime.decode(target[None])[0].astype(float) / 255
    np.testing.assert_allclose(cost, ((frames - goal) ** 2).mean(axis=(1, 2, 3)))
    assert cost[1] == 0 and cost[0] > 0


def test_temporal_distance_makes_one_batched_call_to_any_distance():
    class StepsAlongFirstAxis:  # a Distance: |a_0 - b_0| / 0.1 control steps
        calls = []

        def steps(self, latents_a, latents_b):
            self.calls.append((latents_a.shape, latents_b.shape))
            return np.abs(latents_a[:, 0] - latents_b[:, 0]) / 0.1

    latents, actions, target = rollout()
    distance = StepsAlongFirstAxis()
    cost = TemporalDistance(distance, weighting="all")(latents, actions, target)
    assert distance.calls == [((12, 4), (1, 4))]
    np.testing.assert_allclose(cost, (np.abs(latents[..., 0] - target[0]) / 0.1).mean(axis=1), rtol=1e-5)
    last = TemporalDistance(distance)(latents, actions, target)
    np.testing.assert_allclose(last, np.abs(latents[:, -1, 0] - target[0]) / 0.1, rtol=1e-5)


def test_state_cost_reads_rollout_and_target_in_one_call():
    class FirstTwoDimensions:  # a StateReadout: the "true state" is the latent's first two entries, doubled
        calls = []

        def states(self, latents):
            self.calls.append(latents.shape)
            return 2 * latents[:, :2]

    def distance_in_x(states, goal_state):
        return np.abs(states[..., 0] - goal_state[0])

    latents, actions, target = rollout()
    readout = FirstTwoDimensions()
    cost = StateCost(readout, distance_in_x)(latents, actions, target)
    assert readout.calls == [(3 * 4 + 1, 4)]  # every weighted step and the target, in one call
    np.testing.assert_allclose(cost, np.abs(2 * latents[..., 0] - 2 * target[0]).mean(axis=1), rtol=1e-5)
    last = StateCost(readout, distance_in_x, weighting="last")(latents, actions, target)
    np.testing.assert_allclose(last, np.abs(2 * latents[:, -1, 0] - 2 * target[0]), rtol=1e-5)
    with pytest.raises(ValueError, match="state_cost: expected shape"):
        StateCost(readout, lambda states, goal: states.sum())(latents, actions, target)


def test_action_terms_and_weighted_sum():
    latents, _, target = rollout()
    actions = np.zeros((2, 3, 2), np.float32)
    actions[1] = [[1, 0], [-1, 0], [1, 0]]
    np.testing.assert_allclose(ActionMagnitude()(latents[:2, :3], actions, target), [0, 1])
    np.testing.assert_allclose(ActionSmoothness()(latents[:2, :3], actions, target), [0, 4])
    total = WeightedSum(((2.0, ActionMagnitude()), (0.5, ActionSmoothness())))
    np.testing.assert_allclose(total(latents[:2, :3], actions, target), [0, 4])
    with pytest.raises(ValueError, match="terms: expected at least one"):
        WeightedSum(())
