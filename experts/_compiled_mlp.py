"""Online softmax MLP experts stacked: the weights and Adam moments of every slot in arrays with
a leading slot axis, predicted and trained one record at a time by compiled kernels.

The network of a slot is ``inputs -> hidden (ReLU) -> classes`` (softmax), as
:class:`experts.MLPExpert`: Xavier-uniform first layer drawn at the slot's first learning step
over the input slots known then (inputs that appear later get zero rows: earlier outputs stay
unchanged), one Xavier column per class when the slot first learns that class, zero biases,
Adam (bias-corrected, eps outside the root). A slot's softmax covers the classes it has learned;
before its first step it has no opinion.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from ._compiled_rng import rng_symmetric, xavier_bound

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8   # Adam's defaults, as experts._nn.DenseNet


class MLPStack(NamedTuple):
    """Stacked MLP experts; ``n_slots x inputs x hidden x classes`` capacities."""

    w1: np.ndarray       # (slots, inputs, hidden)
    b1: np.ndarray       # (slots, hidden)
    w2: np.ndarray       # (slots, hidden, classes)
    b2: np.ndarray       # (slots, classes)
    m_w1: np.ndarray     # Adam first moments, shaped as the parameter
    v_w1: np.ndarray     # Adam second moments
    m_b1: np.ndarray
    v_b1: np.ndarray
    m_w2: np.ndarray
    v_w2: np.ndarray
    m_b2: np.ndarray
    v_b2: np.ndarray
    steps: np.ndarray    # (slots,) int64: Adam steps taken (0 = never learned)
    known: np.ndarray    # (slots, classes) int64: 1 where the slot has learned the class


def new_mlp_stack(n_slots: int, n_inputs: int, hidden: int, n_classes: int) -> MLPStack:
    """Empty (never learned) slots for ``n_inputs`` input slots and ``n_classes`` classes."""
    def z(*shape: int) -> np.ndarray:
        return np.zeros((n_slots, *shape))
    return MLPStack(z(n_inputs, hidden), z(hidden), z(hidden, n_classes), z(n_classes),
                    z(n_inputs, hidden), z(n_inputs, hidden), z(hidden), z(hidden),
                    z(hidden, n_classes), z(hidden, n_classes), z(n_classes), z(n_classes),
                    np.zeros(n_slots, dtype=np.int64),
                    np.zeros((n_slots, n_classes), dtype=np.int64))


def grow_mlp_stack(st: MLPStack, n_inputs: int, n_classes: int) -> MLPStack:
    """The same slots with room for ``n_inputs`` inputs and ``n_classes`` classes (zeros:
    an input row of zeros leaves every output unchanged; an unlearned class is not scored)."""
    grown = new_mlp_stack(st.w1.shape[0], n_inputs, st.w1.shape[2], n_classes)
    for old, new in zip(st, grown):
        new[tuple(slice(0, n) for n in old.shape)] = old
    return grown


@njit(cache=True, nogil=True)
def mlp_reset(st: MLPStack, s: int) -> None:
    """Slot ``s`` back to never learned (its next step draws fresh weights)."""
    for a in (st.w1, st.m_w1, st.v_w1, st.w2, st.m_w2, st.v_w2):
        a[s] = 0.0
    for b in (st.b1, st.m_b1, st.v_b1, st.b2, st.m_b2, st.v_b2):
        b[s] = 0.0
    st.steps[s] = 0
    st.known[s] = 0


@njit(cache=True, nogil=True)
def _hidden(st: MLPStack, s: int, z: np.ndarray, n_inputs: int, h: np.ndarray) -> None:
    """Pre-activation hidden layer of slot ``s`` for input ``z`` into ``h``."""
    w1 = st.w1[s]
    h[:] = st.b1[s]
    for d in range(n_inputs):
        zd = z[d]
        if zd != 0.0:
            for j in range(h.shape[0]):
                h[j] += zd * w1[d, j]


@njit(cache=True, nogil=True)
def _softmax_known(st: MLPStack, s: int, h: np.ndarray, n_classes: int, out: np.ndarray) -> None:
    """Softmax over the classes slot ``s`` knows, from the ReLU of pre-activation ``h``;
    0 for the others."""
    w2, known = st.w2[s], st.known[s]
    top = -math.inf
    for c in range(n_classes):
        if known[c]:
            o = st.b2[s, c]
            for j in range(h.shape[0]):
                if h[j] > 0.0:
                    o += h[j] * w2[j, c]
            out[c] = o
            top = max(top, o)
        else:
            out[c] = 0.0
    total = 0.0
    for c in range(n_classes):
        if known[c]:
            out[c] = math.exp(out[c] - top)
            total += out[c]
    for c in range(n_classes):
        out[c] /= total


@njit(cache=True, nogil=True)
def mlp_predict_proba(st: MLPStack, s: int, z: np.ndarray, n_inputs: int, n_classes: int,
                      h: np.ndarray, out: np.ndarray) -> bool:
    """Class probabilities of slot ``s`` for input ``z`` into ``out[:n_classes]`` (``h`` is
    scratch of the hidden size); False, ``out`` zero, when the slot has learned nothing."""
    if st.steps[s] == 0:
        out[:n_classes] = 0.0
        return False
    _hidden(st, s, z, n_inputs, h)
    _softmax_known(st, s, h, n_classes, out)
    return True


@njit(cache=True, nogil=True)
def _adam(p: np.ndarray, m: np.ndarray, v: np.ndarray, g: float, i: int, step: float) -> None:
    """One Adam update of the flat element ``i`` (``p``, ``m``, ``v`` raveled views)."""
    mi = _BETA1 * m[i] + (1.0 - _BETA1) * g
    vi = _BETA2 * v[i] + (1.0 - _BETA2) * g * g
    m[i] = mi
    v[i] = vi
    p[i] -= step * mi / (math.sqrt(vi) + _EPS)


@njit(cache=True, nogil=True)
def mlp_learn(st: MLPStack, s: int, z: np.ndarray, n_inputs: int, n_classes: int, y: int,
              w: float, lr: float, rng: np.ndarray, h: np.ndarray, p: np.ndarray,
              gh: np.ndarray) -> None:
    """One Adam step of slot ``s`` on the cross-entropy of ``(z, y)`` scaled by weight ``w``
    (``h``, ``gh``: hidden-size scratch; ``p``: class-size scratch)."""
    n_hidden = h.shape[0]
    if st.steps[s] == 0:   # first step: Xavier first layer over the inputs known now
        a = xavier_bound(n_inputs, n_hidden)
        for d in range(n_inputs):
            for j in range(n_hidden):
                st.w1[s, d, j] = rng_symmetric(rng, a)
    if not st.known[s, y]:  # a new class for this slot: its own Xavier column
        n_known = 1
        for c in range(n_classes):
            n_known += st.known[s, c]
        a = xavier_bound(n_hidden, n_known)
        for j in range(n_hidden):
            st.w2[s, j, y] = rng_symmetric(rng, a)
        st.known[s, y] = 1
    _hidden(st, s, z, n_inputs, h)
    _softmax_known(st, s, h, n_classes, p)
    for c in range(n_classes):
        p[c] *= w
    p[y] -= w                       # d loss / d logit, on known classes (0 elsewhere)
    st.steps[s] += 1
    t = st.steps[s]
    step = lr * math.sqrt(1.0 - _BETA2 ** t) / (1.0 - _BETA1 ** t)
    w2, mw2, vw2 = st.w2[s].ravel(), st.m_w2[s].ravel(), st.v_w2[s].ravel()
    n_cols = st.w2.shape[2]
    for j in range(n_hidden):
        g = 0.0
        for c in range(n_classes):
            g += p[c] * w2[j * n_cols + c]
        gh[j] = g if h[j] > 0.0 else 0.0
        a_j = h[j] if h[j] > 0.0 else 0.0
        for c in range(n_classes):
            _adam(w2, mw2, vw2, a_j * p[c], j * n_cols + c, step)
    b2, mb2, vb2 = st.b2[s], st.m_b2[s], st.v_b2[s]
    for c in range(n_classes):
        _adam(b2, mb2, vb2, p[c], c, step)
    w1, mw1, vw1 = st.w1[s].ravel(), st.m_w1[s].ravel(), st.v_w1[s].ravel()
    for d in range(n_inputs):
        zd = z[d]
        for j in range(n_hidden):
            _adam(w1, mw1, vw1, zd * gh[j], d * n_hidden + j, step)
    b1, mb1, vb1 = st.b1[s], st.m_b1[s], st.v_b1[s]
    for j in range(n_hidden):
        _adam(b1, mb1, vb1, gh[j], j, step)
