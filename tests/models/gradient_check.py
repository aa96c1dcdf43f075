"""A directional-derivative check for the vector-Jacobian products of the torch runtime and distance."""
import numpy as np


def directional_check(function, vjp, value: np.ndarray, output_grads: np.ndarray, epsilon: float = 1e-2) -> None:
    """<vjp(g), v> equals the central difference of <f(x), g> along a random direction v."""
    direction = np.random.default_rng(3).normal(size=value.shape).astype(np.float32)
    change = ((function(value + epsilon * direction) - function(value - epsilon * direction)) * output_grads).sum()
    np.testing.assert_allclose((vjp(output_grads) * direction).sum(), change / (2 * epsilon), rtol=2e-2, atol=1e-3)
