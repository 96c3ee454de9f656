"""Jitter filtering for per-frame measurements: the One-Euro filter (Casiez, Roussel and
Vogel, CHI 2012), vectorised over any number of values.

A low-pass filter whose cutoff rises with the signal's speed: at rest it removes the landmark
model's frame-to-frame wobble, during a blink or a jaw drop it lets the motion through with
little lag. Values should be in comparable units (the retargeting divides positions by the
inter-ocular distance) so that one `beta` suits them all.
"""

from __future__ import annotations

import math

import numpy as np


class OneEuro:
    def __init__(
        self, fps: float, min_cutoff: float | np.ndarray, beta: float, d_cutoff: float
    ) -> None:
        """`min_cutoff` may be one value per filtered value."""
        self._rate = float(fps)
        self._min_cutoff = min_cutoff
        self._beta = beta
        self._d_alpha = self._alpha(d_cutoff)
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def _alpha(self, cutoff: float | np.ndarray) -> np.ndarray:
        tau = 1.0 / (2 * math.pi * np.asarray(cutoff, np.float64))
        return np.asarray(1.0 / (1.0 + tau * self._rate))

    @property
    def value(self) -> np.ndarray:
        """The last filtered values (the filter must have seen one)."""
        assert self._x is not None
        return self._x.copy()

    def ease(self, target: float, share: float) -> None:
        """Move the state `1 − share` of the way toward `target` with no measurement (a lost
        signal fading to its rest value); the next measurement goes on from there."""
        if self._x is None or self._dx is None:
            return
        self._x = target + share * (self._x - target)
        self._dx = share * self._dx

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None or self._dx is None:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self._x) * self._rate
        self._dx = self._dx + self._d_alpha * (dx - self._dx)
        a = self._alpha(self._min_cutoff + self._beta * np.abs(self._dx))
        self._x = self._x + a * (x - self._x)
        return self._x.copy()
