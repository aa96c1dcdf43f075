"""The robot's free-motion step (models/free_motion.py) and RSSMConfig.robot_step_fit, which holds the robot state's
linear step at it."""
import numpy as np
import pytest
import torch

from hvp.models import checkpoint
from hvp.models.free_motion import fit_free_motion

WEIGHT = np.array([[1.0, 0.0, 0.07, 0.0, 0.04, 0.0],
                   [0.0, 1.0, 0.0, 0.07, 0.0, 0.04],
                   [0.0, 0.0, 0.61, 0.0, 0.82, 0.0],
                   [0.0, 0.0, 0.0, 0.61, 0.0, 0.82]])
BIAS = np.array([0.01, -0.02, 0.0, 0.03])


def steps(count, touched_fraction, rng):
    """A linear system's steps, `touched_fraction` of them knocked off it (contacts, walls)."""
    states, actions = rng.normal(size=(count, 4)), rng.uniform(-1, 1, (count, 2))
    following = np.concatenate([states, actions], 1) @ WEIGHT.T + BIAS
    touched = rng.random(count) < touched_fraction
    following[touched] += rng.normal(scale=0.3, size=(int(touched.sum()), 4))
    return states, actions, following


def test_the_fit_finds_the_step_most_steps_obey_exactly_despite_the_rest():
    weight, bias = fit_free_motion(*steps(3000, 0.45, np.random.default_rng(0)))
    np.testing.assert_allclose(weight, WEIGHT, atol=1e-5)
    np.testing.assert_allclose(bias, BIAS, atol=1e-5)
    # least squares over every step is pulled off by the touched ones
    states, actions, following = steps(3000, 0.45, np.random.default_rng(0))
    inputs = np.concatenate([states, actions, np.ones((3000, 1))], 1)
    plain, *_ = np.linalg.lstsq(inputs, following, rcond=None)
    assert np.abs(plain[:-1].T - WEIGHT).max() > 1e-3


def test_motion_that_no_linear_step_explains_is_refused_by_name():
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match="no linear step explains 10% of the steps"):
        fit_free_motion(rng.normal(size=(500, 4)), rng.normal(size=(500, 2)), rng.normal(size=(500, 4)))
    with pytest.raises(ValueError, match="expected \\[N, S\\], \\[N, A\\], \\[N, S\\]"):
        fit_free_motion(np.zeros((10, 4)), np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="needs at least 14 steps"):
        fit_free_motion(*steps(10, 0.0, rng))


def test_hvp_train_robot_step_fit_holds_the_fitted_step(maze_file, tmp_path):
    from hvp.cli import main
    from hvp.data import load_dataset
    from hvp.models.config import RSSMConfig
    from hvp.models.fit import robot_step_from

    out = tmp_path / "step-fit"
    assert main(["train", "--data", maze_file, "--out", str(out), "--preset", "debug", "--steps", "20",
                 "--proprio-weight", "10", "--robot-step-fit", "--threads", "1", "--no-progress"]) == 0
    _, model, config = checkpoint.load_model(out)
    assert config["model"]["robot_step_fit"] is True and not model.robot_step.weight.requires_grad
    weight, bias = robot_step_from(load_dataset(maze_file), model)
    torch.testing.assert_close(model.robot_step.weight, weight)  # fit before training, untouched by it
    torch.testing.assert_close(model.robot_step.bias, bias)
    # maze's ball moves freely most of the time: the step carries its velocity into its position
    assert weight[0, 2] > 0.01 and abs(float(weight[0, 0]) - 1) < 1e-4
    with pytest.raises(ValueError, match="weight, bias: expected \\[4, 6\\] and \\[4\\]"):
        model.set_robot_step(weight[:, :4], bias)
    with pytest.raises(ValueError, match="robot_step_fit needs a robot state"):
        RSSMConfig.preset("debug", robot_step_fit=True)
