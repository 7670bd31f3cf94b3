"""Compiled per-record steps of the DriftMoE paper's models (``driftmoe-data``,
``driftmoe-task``): the router's softmax for one record, its learning step, and MoE-Data's
experts (top-1 predicts, top-k learn, multi-hot correctness target), over the arrays of
:mod:`experts._compiled_inputs`, :mod:`router._compiled` and :mod:`experts._compiled_tree`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from experts._compiled_inputs import inputs_allot, inputs_learn, inputs_standardise
from experts._compiled_tree import tree_predict_learn, tree_predict_proba
from router._compiled import router_buffer, router_logits, router_step


@njit(cache=True, nogil=True)
def router_softmax(inputs, router, x, n_out: int, temperature: float, z, outputs, h1, h2,
                   logits, weights) -> None:
    """``weights[:n_out]``: softmax(logits / temperature) of record ``x`` (encoded row) over
    router outputs ``0 .. n_out``; ``z`` (1, inputs), ``h1``, ``h2``, ``logits`` scratch."""
    inputs_standardise(inputs, x, z[0], inputs.count, inputs.mean, inputs.m2)
    router_logits(router, z, 1, inputs.used[0], outputs, n_out, h1, h2, logits)
    top = -math.inf
    for k in range(n_out):
        top = max(top, logits[0, k] / temperature)
    total = 0.0
    for k in range(n_out):
        weights[k] = math.exp(logits[0, k] / temperature - top)
        total += weights[k]
    for k in range(n_out):
        weights[k] /= total


@njit(cache=True, nogil=True)
def router_learn(inputs, router, rng, x, z, mask, seen, lr: float, dropout: float) -> None:
    """Fold record ``x`` into the input statistics, buffer it with target ``mask`` over the
    ``seen`` outputs, and take an Adam step when the mini-batch is full."""
    inputs_allot(inputs, x)
    inputs_learn(inputs, x, inputs.count, inputs.mean, inputs.m2)
    inputs_standardise(inputs, x, z[0], inputs.count, inputs.mean, inputs.m2)
    if router_buffer(router, z[0], inputs.used[0], mask, seen):
        router_step(router, rng, inputs.used[0], lr, dropout)


@njit(cache=True, nogil=True)
def _first_max(row) -> int:
    """Index of the first largest positive entry, -1 when all are 0 (no opinion yet)."""
    best = -1
    for c in range(row.shape[0]):
        if row[c] > 0.0 and (best < 0 or row[c] > row[best]):
            best = c
    return best


@njit(cache=True, nogil=True)
def experts_step(trees, x, y: int, w: float, weights, n_train: int, learn: bool, proba,
                 mask) -> tuple[int, int]:
    """MoE-Data's experts on one record: ``(slot that predicts, room status)``. The predicting
    slot is the first by descending router weight (stable) whose tree has an opinion, -1 none.
    With ``learn``, every tree predicts (``proba`` rows, by slot), the top ``n_train`` by
    weight learn ``(x, y, w)`` in the same pass, and ``mask`` gets the router's multi-hot
    target: every tree whose argmax is ``y``; if none, the one giving ``y`` the highest
    probability (the first on ties). Status 1: grow the trees before the next record."""
    order = np.argsort(-weights, kind="mergesort")
    status, chosen = 0, -1
    for r in range(order.shape[0]):
        s = order[r]
        proba[s, :] = 0.0
        if learn and r < n_train and w > 0.0:
            status |= tree_predict_learn(trees, s, x, y, w, proba[s])
        else:
            tree_predict_proba(trees, s, x, proba[s])
        if chosen < 0 and _first_max(proba[s]) >= 0:
            chosen = s
            if not learn:
                return chosen, 0
    if learn:
        any_right = False
        for s in range(order.shape[0]):
            right = _first_max(proba[s]) == y
            mask[s] = 1.0 if right else 0.0
            any_right |= right
        if not any_right:
            mask[np.argmax(proba[:, y])] = 1.0
    return chosen, status
