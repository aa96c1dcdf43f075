"""Colored (power-law) noise for iCEM: temporally correlated action perturbations.

Power spectral density S(f) ~ 1 / f**beta along the time axis: beta=0 is white noise,
beta=2 is like a random walk (smooth, low-frequency actions that move a body further
than white noise of the same variance). Built by shaping white Gaussian noise in the
frequency domain (rfft), as in Timmer & Koenig (1995) and iCEM (Pinneri et al. 2020).
"""
from __future__ import annotations

import numpy as np


def colored_noise(rng: np.random.Generator, beta: float, count: int, steps: int, action_dim: int) -> np.ndarray:
    """-> float32 [count, steps, action_dim], zero mean and unit variance (over draws).

    Correlated along `steps`; independent across sequences and action dimensions.
    """
    if beta < 0:
        raise ValueError(f"beta: expected a power-law exponent >= 0, got {beta}")
    if beta == 0 or steps == 1:
        return rng.standard_normal((count, steps, action_dim), dtype=np.float32)
    frequencies = np.fft.rfftfreq(steps)
    # The zero frequency would scale to infinity; give it the lowest resolvable one.
    frequencies[0] = 1.0 / steps
    amplitude = frequencies ** (-beta / 2.0)
    shape = (count, action_dim, len(frequencies))
    real, imag = rng.standard_normal(shape), rng.standard_normal(shape)
    # The DC term (and the Nyquist term for even steps) of a real signal is real;
    # it gets the variance the dropped imaginary part would have carried.
    imag[..., 0] = 0.0
    real[..., 0] *= np.sqrt(2.0)
    if steps % 2 == 0:
        imag[..., -1] = 0.0
        real[..., -1] *= np.sqrt(2.0)
    signal = np.fft.irfft(amplitude * (real + 1j * imag), n=steps, axis=-1)
    # Divide by the exact std of this construction (not each sample's own) so the DC
    # offset survives: DC and Nyquist terms contribute 2 a^2, the others 4 a^2, over n^2.
    power = 4.0 * amplitude**2
    power[0] = 2.0 * amplitude[0] ** 2
    if steps % 2 == 0:
        power[-1] = 2.0 * amplitude[-1] ** 2
    signal /= np.sqrt(power.sum()) / steps
    return np.ascontiguousarray(signal.transpose(0, 2, 1), dtype=np.float32)
