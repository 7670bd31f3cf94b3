"""The DriftMoE router as compiled kernels over arrays: MLP ``inputs -> h1 -> ReLU -> h2 -> ReLU
-> outputs`` logits, BCE-with-logits on the multi-hot correctness mask over the outputs that were
observed, Adam, dropout on the hidden layers in training steps, mini-batches.

As :class:`router.DriftMoERouter`: the first layer is zero (uniform weights) until the first
step, which draws it Xavier-uniform over the input slots known then; inputs that appear later
get zero rows. Outputs are indexed by expert *slot*, not pool position: adding an expert draws
its column afresh and zeroes its moments and its entries in the buffered mini-batch; removing
one zeroes its buffered entries (so the loss no longer counts it).

Parameters change only at a step, so :func:`router_logits` computes the logits of a whole
stretch of records between two steps as one (compiled, fixed-order) matrix product: each row's
numbers are the same whatever the stretch's length, so one record at a time and a batch agree
bit for bit.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from experts._compiled_rng import rng_symmetric, rng_uniform, xavier_bound

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8   # Adam's defaults, as the Python router


class RouterState(NamedTuple):
    """Weights, Adam moments, the mini-batch buffer and counters of one router."""

    w1: np.ndarray      # (inputs, h1)
    b1: np.ndarray      # (h1,)
    w2: np.ndarray      # (h1, h2)
    b2: np.ndarray      # (h2,)
    w3: np.ndarray      # (h2, outputs)
    b3: np.ndarray      # (outputs,)
    m: np.ndarray       # (6, max parameter size) Adam first moments, one row per parameter
    v: np.ndarray       # same shape: second moments
    buf_z: np.ndarray   # (batch, inputs): buffered standardised inputs
    buf_mask: np.ndarray  # (batch, outputs): correctness mask
    buf_seen: np.ndarray  # (batch, outputs): 1 where the output was observed
    ints: np.ndarray    # (3,) int64: buffered records, steps taken, first layer drawn (0/1)


_N_BUF, _STEPS, _DRAWN = range(3)


def new_router(n_inputs: int, hidden: tuple[int, int], n_outputs: int, batch_size: int,
               rng: np.ndarray) -> RouterState:
    """A router with Xavier hidden and output layers drawn from ``rng`` (a
    :mod:`experts._compiled_rng` state, advanced) and a zero first layer."""
    h1, h2 = hidden
    w2 = np.zeros((h1, h2))
    w3 = np.zeros((h2, n_outputs))
    _fill_xavier(rng, w2, h1, h2)
    _fill_xavier(rng, w3, h2, n_outputs)
    size = max(n_inputs * h1, h1 * h2, h2 * n_outputs, h1)
    state = RouterState(np.zeros((n_inputs, h1)), np.zeros(h1), w2, np.zeros(h2), w3,
                        np.zeros(n_outputs), np.zeros((6, size)), np.zeros((6, size)),
                        np.zeros((batch_size, n_inputs)), np.zeros((batch_size, n_outputs)),
                        np.zeros((batch_size, n_outputs)), np.zeros(3, dtype=np.int64))
    return state


@njit(cache=True, nogil=True)
def _fill_xavier(rng: np.ndarray, w: np.ndarray, fan_in: int, fan_out: int) -> None:
    a = xavier_bound(fan_in, fan_out)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            w[i, j] = rng_symmetric(rng, a)


def grow_router(st: RouterState, n_inputs: int) -> RouterState:
    """The same router with room for ``n_inputs`` input slots (zero rows and moments)."""
    h1 = st.w1.shape[1]
    w1 = np.zeros((n_inputs, h1))
    w1[: st.w1.shape[0]] = st.w1
    size = max(n_inputs * h1, st.m.shape[1])
    m, v = np.zeros((6, size)), np.zeros((6, size))
    for src, dst in ((st.m, m), (st.v, v)):
        dst[:, : st.m.shape[1]] = src   # the first layer's moments are by row: new rows follow
    buf_z = np.zeros((st.buf_z.shape[0], n_inputs))
    buf_z[:, : st.buf_z.shape[1]] = st.buf_z
    return st._replace(w1=w1, m=m, v=v, buf_z=buf_z)


def grow_router_outputs(st: RouterState, n_outputs: int) -> RouterState:
    """The same router with room for ``n_outputs`` outputs (zero columns, moments and
    buffered entries; :func:`router_add_output` draws a column when an output joins)."""
    h2, old = st.w3.shape
    w3 = np.zeros((h2, n_outputs))
    w3[:, :old] = st.w3
    b3 = np.zeros(n_outputs)
    b3[:old] = st.b3
    size = max(h2 * n_outputs, st.m.shape[1])
    m, v = np.zeros((6, size)), np.zeros((6, size))
    for src, dst in ((st.m, m), (st.v, v)):
        dst[:, : src.shape[1]] = src
        dst[4] = 0.0   # the output layer's moments are by row of w3: re-laid for the new width
        dst[4, : h2 * n_outputs].reshape(h2, n_outputs)[:, :old] = src[4, : h2 * old].reshape(
            h2, old)
    buf_mask, buf_seen = (np.zeros((st.buf_mask.shape[0], n_outputs)) for _ in range(2))
    buf_mask[:, :old] = st.buf_mask
    buf_seen[:, :old] = st.buf_seen
    return st._replace(w3=w3, b3=b3, m=m, v=v, buf_mask=buf_mask, buf_seen=buf_seen)


@njit(cache=True, nogil=True)
def router_add_output(st: RouterState, rng: np.ndarray, k: int, n_active: int) -> None:
    """Output ``k`` (a slot joining the pool, ``n_active`` outputs with it) gets a fresh
    Xavier column, zero bias and moments, and is unobserved on the buffered records."""
    h2, n_out = st.w3.shape
    a = xavier_bound(h2, n_active)
    for j in range(h2):
        st.w3[j, k] = rng_symmetric(rng, a)
        st.m[4, j * n_out + k] = 0.0
        st.v[4, j * n_out + k] = 0.0
    st.b3[k] = 0.0
    st.m[5, k] = 0.0
    st.v[5, k] = 0.0
    router_drop_output(st, k)


@njit(cache=True, nogil=True)
def router_drop_output(st: RouterState, k: int) -> None:
    """Output ``k`` leaves the pool: its buffered mask and observation entries are zeroed."""
    for r in range(st.buf_mask.shape[0]):
        st.buf_mask[r, k] = 0.0
        st.buf_seen[r, k] = 0.0


@njit(cache=True, nogil=True)
def router_logits(st: RouterState, z: np.ndarray, n_rows: int, n_inputs: int,
                  outputs: np.ndarray, n_out: int, h1: np.ndarray, h2: np.ndarray,
                  logits: np.ndarray) -> None:
    """Logits of rows ``z[:n_rows]`` for the outputs ``outputs[:n_out]`` into
    ``logits[row, output]`` (``h1``: (rows, h1) and ``h2``: (rows, h2) scratch)."""
    for r in range(n_rows):
        h1[r, :] = st.b1
        for d in range(n_inputs):
            zd = z[r, d]
            if zd != 0.0:
                for j in range(st.w1.shape[1]):
                    h1[r, j] += zd * st.w1[d, j]
        h2[r, :] = st.b2
        for i in range(st.w2.shape[0]):
            a = h1[r, i]
            if a > 0.0:
                for j in range(st.w2.shape[1]):
                    h2[r, j] += a * st.w2[i, j]
        for q in range(n_out):
            k = outputs[q]
            o = st.b3[k]
            for j in range(st.w3.shape[0]):
                if h2[r, j] > 0.0:
                    o += h2[r, j] * st.w3[j, k]
            logits[r, k] = o


@njit(cache=True, nogil=True)
def router_buffer(st: RouterState, z: np.ndarray, n_inputs: int, mask: np.ndarray,
                  seen: np.ndarray) -> bool:
    """Buffer one record; True when the buffer is full (time for :func:`router_step`)."""
    r = st.ints[_N_BUF]
    st.buf_z[r, :n_inputs] = z[:n_inputs]
    st.buf_z[r, n_inputs:] = 0.0
    st.buf_mask[r, :] = mask
    st.buf_seen[r, :] = seen
    st.ints[_N_BUF] = r + 1
    return r + 1 >= st.buf_z.shape[0]


@njit(cache=True, nogil=True)
def _adam_row(p: np.ndarray, m: np.ndarray, v: np.ndarray, g: np.ndarray, n: int,
              step: float) -> None:
    for i in range(n):
        mi = _BETA1 * m[i] + (1.0 - _BETA1) * g[i]
        vi = _BETA2 * v[i] + (1.0 - _BETA2) * g[i] * g[i]
        m[i] = mi
        v[i] = vi
        p[i] -= step * mi / (math.sqrt(vi) + _EPS)


@njit(cache=True, nogil=True)
def router_step(st: RouterState, rng: np.ndarray, n_inputs: int, lr: float,
                dropout: float) -> None:
    """One Adam step on the buffered records (mean BCE over observed outputs), then empty
    the buffer. The first step draws the first layer over the ``n_inputs`` known."""
    n = st.ints[_N_BUF]
    st.ints[_N_BUF] = 0
    if st.ints[_DRAWN] == 0:
        _fill_xavier(rng, st.w1[:n_inputs], n_inputs, st.w1.shape[1])
        st.ints[_DRAWN] = 1
    n_seen = st.buf_seen[:n].sum()
    if n_seen == 0.0:
        return
    st.ints[_STEPS] += 1
    n1, n2, n_out = st.w1.shape[1], st.w2.shape[1], st.w3.shape[1]
    keep = 1.0 - dropout
    z = st.buf_z
    a1 = np.zeros((n, n1))
    a2 = np.zeros((n, n2))
    for r in range(n):   # forward with dropout (masks drawn row by row, layer 1 then 2)
        a1[r, :] = st.b1
        for d in range(n_inputs):
            if z[r, d] != 0.0:
                for j in range(n1):
                    a1[r, j] += z[r, d] * st.w1[d, j]
        for j in range(n1):
            a1[r, j] = max(a1[r, j], 0.0)
        if dropout > 0.0:
            for j in range(n1):
                a1[r, j] = a1[r, j] / keep if rng_uniform(rng) < keep else 0.0
        a2[r, :] = st.b2
        for i in range(n1):
            if a1[r, i] > 0.0:
                for j in range(n2):
                    a2[r, j] += a1[r, i] * st.w2[i, j]
        for j in range(n2):
            a2[r, j] = max(a2[r, j], 0.0)
        if dropout > 0.0:
            for j in range(n2):
                a2[r, j] = a2[r, j] / keep if rng_uniform(rng) < keep else 0.0
    g3 = np.zeros((n, n_out))
    for r in range(n):
        for k in range(n_out):
            if st.buf_seen[r, k] != 0.0:
                o = st.b3[k]
                for j in range(n2):
                    o += a2[r, j] * st.w3[j, k]
                sig = 0.5 * (1.0 + math.tanh(0.5 * o))
                g3[r, k] = (sig - st.buf_mask[r, k]) * st.buf_seen[r, k] / n_seen
    gw3 = np.zeros(n2 * n_out)
    gb3 = np.zeros(n_out)
    g2 = np.zeros((n, n2))
    # units a ReLU or dropout zeroed (activation 0) get no gradient and give none: skipped
    # (the terms they would add are zeros, so the sums are the same)
    for r in range(n):
        for k in range(n_out):
            g = g3[r, k]
            if g != 0.0:
                gb3[k] += g
                for j in range(n2):
                    if a2[r, j] > 0.0:
                        gw3[j * n_out + k] += a2[r, j] * g
                        g2[r, j] += g * st.w3[j, k]
        if dropout > 0.0:
            for j in range(n2):
                g2[r, j] /= keep
    gw2 = np.zeros(n1 * n2)
    gb2 = np.zeros(n2)
    g1 = np.zeros((n, n1))
    for r in range(n):
        for i in range(n1):
            a = a1[r, i]
            if a > 0.0:
                g = 0.0
                for j in range(n2):
                    gw2[i * n2 + j] += a * g2[r, j]
                    g += g2[r, j] * st.w2[i, j]
                g1[r, i] = g / keep if dropout > 0.0 else g
        gb2 += g2[r]
    gw1 = np.zeros(n_inputs * n1)
    gb1 = np.zeros(n1)
    for r in range(n):
        for d in range(n_inputs):
            if z[r, d] != 0.0:
                for j in range(n1):
                    if g1[r, j] != 0.0:
                        gw1[d * n1 + j] += z[r, d] * g1[r, j]
        gb1 += g1[r]
    t = st.ints[_STEPS]
    step = lr * math.sqrt(1.0 - _BETA2 ** t) / (1.0 - _BETA1 ** t)
    _adam_row(st.w1.ravel(), st.m[0], st.v[0], gw1, n_inputs * n1, step)
    _adam_row(st.b1, st.m[1], st.v[1], gb1, n1, step)
    _adam_row(st.w2.ravel(), st.m[2], st.v[2], gw2, n1 * n2, step)
    _adam_row(st.b2, st.m[3], st.v[3], gb2, n2, step)
    _adam_row(st.w3.ravel(), st.m[4], st.v[4], gw3, n2 * n_out, step)
    _adam_row(st.b3, st.m[5], st.v[5], gb3, n_out, step)
