import numpy as np
import pytest

from hvp.planners.noise import colored_noise


@pytest.mark.parametrize("steps", [7, 10])
def test_colored_noise_has_unit_variance_and_correlates_more_with_beta(steps):
    rng = np.random.default_rng(0)
    lag_one = []
    for beta in (0.0, 1.0, 2.0, 3.0):
        noise = colored_noise(rng, beta, 4000, steps, 2)
        assert noise.shape == (4000, steps, 2) and noise.dtype == np.float32
        assert noise.var() == pytest.approx(1.0, abs=0.05)
        assert np.abs(noise.mean()) < 0.05
        lag_one.append(np.mean(noise[:, 1:] * noise[:, :-1]))
    assert abs(lag_one[0]) < 0.05  # white
    assert lag_one == sorted(lag_one) and lag_one[-1] > 0.6  # redder noise, smoother sequences


def test_colored_noise_is_seeded_and_validates_beta():
    first = colored_noise(np.random.default_rng(1), 2.0, 3, 5, 2)
    np.testing.assert_array_equal(first, colored_noise(np.random.default_rng(1), 2.0, 3, 5, 2))
    with pytest.raises(ValueError, match="beta: expected a power-law exponent >= 0, got -1"):
        colored_noise(np.random.default_rng(1), -1.0, 3, 5, 2)
