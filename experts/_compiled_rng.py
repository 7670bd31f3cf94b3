"""A random-number generator for compiled kernels whose whole state is one uint64 array.

SplitMix64 (Steele, Lea & Flood, 2014): 64 bits of state, passes BigCrush, one multiply-xorshift
chain per draw. The state is an array the kernels advance in place (``state[0]``), so a model's
random stream is part of its snapshot and runs are reproducible, as pynndescent's
``tau_rand_int``. numba's own ``np.random`` keeps a hidden per-thread state that no snapshot
could hold.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0   # 2**-53: a 53-bit integer to a float in [0, 1)


def new_rng(seed: int) -> np.ndarray:
    """The state array of a generator seeded with ``seed`` (any Python int)."""
    return np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)


@njit(cache=True, nogil=True)
def rng_next(state: np.ndarray) -> np.uint64:
    """The next 64 random bits; advances ``state``."""
    z = state[0] + _GOLDEN
    state[0] = z
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def rng_uniform(state: np.ndarray) -> float:
    """A float uniform on [0, 1) (53 random bits)."""
    return float(rng_next(state) >> np.uint64(11)) * _TO_UNIT


@njit(cache=True, nogil=True)
def rng_poisson(state: np.ndarray, lam: float) -> int:
    """A Poisson(``lam``) count by Knuth's product of uniforms (lam up to ~30; online bagging
    uses 1 or 6): about lam + 1 draws."""
    limit = math.exp(-lam)
    k = 0
    p = rng_uniform(state)
    while p > limit:
        k += 1
        p *= rng_uniform(state)
    return k


@njit(cache=True, nogil=True)
def xavier_bound(fan_in: int, fan_out: int) -> float:
    """Half-width a of Xavier-uniform U(-a, a): sqrt(6 / (fan_in + fan_out))."""
    return math.sqrt(6.0 / max(fan_in + fan_out, 1))


@njit(cache=True, nogil=True)
def rng_symmetric(state: np.ndarray, a: float) -> float:
    """A float uniform on [-a, a) (one Xavier-uniform weight for ``a = xavier_bound(...)``)."""
    return (2.0 * rng_uniform(state) - 1.0) * a
