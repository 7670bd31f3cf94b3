"""Compiled prequential loops of the DriftMoE paper's models (:func:`moe_run`) and their per-record steps: the router's softmax for one
record, its learning step, and MoE-Data's experts (top-1 predicts, top-k learn, multi-hot
correctness target), over the arrays of :mod:`experts._compiled_inputs`, :mod:`router._compiled`
and :mod:`experts._compiled_tree`.

A loop predicts record i, learns it, then goes on to record i + 1, and returns ``(status, i)``:

- ``DONE``: records ``start .. stop`` are done (with ``learn=False``: record ``start`` predicted,
  nothing changed);
- ``NEEDS_ROOM``: record ``i`` is predicted but learning it needs bigger arrays (a new feature,
  nominal value, input slot or class): Python grows them and calls again from ``i`` with
  ``predicted=True``, which learns record ``i`` without predicting it again;
- ``TREE_ROOM``: record ``i`` is learned and a tree is past half its node arrays: Python grows
  the trees and calls again from ``i + 1``.

Record-at-a-time is the same loop over one record (``predict_proba_one``: ``learn=False``;
``learn_one``: ``learn=True``), so both paths run the same arithmetic in the same order. When
record i needs no room, its prediction and its learning share one router softmax and one pass
over the trees (a tree predicts, then learns, as ``tree_predict_learn``): the numbers are those
of the separate predict and learn calls, computed once.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from experts._compiled_inputs import (
    inputs_allot,
    inputs_learn,
    inputs_missing,
    inputs_standardise,
)
from experts._compiled_tree import tree_predict_learn, tree_predict_proba
from experts._compiled_tree_kernels import first_max
from router._compiled import router_buffer, router_logits, router_step

DONE, NEEDS_ROOM, TREE_ROOM = range(3)


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
        if chosen < 0 and first_max(proba[s]) >= 0:
            chosen = s
            if not learn:
                return chosen, 0
    if learn:
        any_right = False
        for s in range(order.shape[0]):
            right = first_max(proba[s]) == y
            mask[s] = 1.0 if right else 0.0
            any_right |= right
        if not any_right:
            mask[np.argmax(proba[:, y])] = 1.0
    return chosen, status


@njit(cache=True, nogil=True)
def needs_room(inputs, value_room, X, Y, widths, i: int, n_classes: int) -> bool:
    """Whether learning record ``i`` needs bigger arrays first: features registered past the
    arrays' (``widths[i]``: features the encoder knew once it had read record ``i``), a class
    past the ``n_classes`` sized, a nominal value index past the input map's or
    ``value_room``'s (per feature: the trees'; empty for none), more input slots than room."""
    n_features = inputs.slot_of.shape[0]
    if widths[i] > n_features or Y[i] >= n_classes:
        return True
    x = X[i, :n_features]
    for f in range(n_features):
        v = x[f]
        if inputs.nominal[f] and not math.isnan(v) and (v >= inputs.slot_of.shape[1] or (
                f < value_room.shape[0] and v >= value_room[f])):
            return True
    return inputs.used[0] + inputs_missing(inputs, x) > inputs.count.shape[0]


@njit(cache=True, nogil=True)
def _top(row, n: int) -> tuple[int, float]:
    """The first largest of ``row[:n]`` and its value (``max`` over a class dict)."""
    best = 0
    for c in range(1, n):
        if row[c] > row[best]:
            best = c
    return best, row[best]


@njit(cache=True, nogil=True)
def moe_run(inputs, router, trees, rng, learned, sc, X, Y, W, widths, start: int, stop: int,
            learn: bool, predicted: bool, n_classes: int, temperature: float, lr: float,
            dropout: float, n_train: int, preds, conf) -> tuple[int, int]:
    """Both models' loop over records ``start .. stop`` of ``X`` (encoded rows, NaN past a
    row's width), labels ``Y`` (class indices), weights ``W``; predictions (class index, -1
    none) and their probability go to ``preds`` and ``conf``, the class probabilities of the
    last record predicted to ``sc.out``; ``learned[0]`` counts learned records. See the module
    docstring for the status.

    MoE-Data (``n_train`` > 0 trees learn a record): the router weighs the ``trees``, the first
    by weight with an opinion predicts, the router learns their correctness mask. MoE-Task
    (``n_train`` 0; ``trees`` an empty pool of no features): the router's outputs are the
    classes, its softmax the prediction, and a record with a positive weight is a router
    training record with target one-hot(y). One loop for both: each compiled loop costs
    seconds of cold compile, most of it the router and tree code it takes in."""
    task = n_train == 0
    n_features = inputs.slot_of.shape[0]
    n_out = n_classes if task else trees.settings.shape[0]
    room = trees.nominal_values[0]   # MoE-Task: empty, no room to check
    for i in range(start, stop):
        x = X[i, :n_features]
        grow = learn and needs_room(inputs, room, X, Y, widths, i, n_classes)
        resumed = predicted and i == start
        status = 0
        if not resumed:
            preds[i], conf[i] = -1, 0.0
            if n_classes > 0:
                router_softmax(inputs, router, x, n_out, temperature, sc.z, sc.outputs, sc.h1,
                               sc.h2, sc.logits, sc.weights)
                if task:
                    sc.out[:n_classes] = sc.weights[:n_classes]
                    preds[i], conf[i] = _top(sc.out, n_classes)
                else:   # with no room to make, the top trees predict and learn in one pass
                    chosen, status = experts_step(trees, x, Y[i], W[i], sc.weights, n_train,
                                                  learn and not grow, sc.proba, sc.mask)
                    if chosen >= 0:
                        sc.out[:n_classes] = sc.proba[chosen, :n_classes]
                        preds[i], conf[i] = _top(sc.out, n_classes)
        if not learn:
            return DONE, i + 1
        if grow:
            return NEEDS_ROOM, i
        if task:
            sc.mask[:] = 0.0
            sc.mask[Y[i]] = 1.0
            sc.seen[:] = 0.0
            sc.seen[:n_classes] = 1.0
        else:
            if resumed:
                router_softmax(inputs, router, x, n_out, temperature, sc.z, sc.outputs, sc.h1,
                               sc.h2, sc.logits, sc.weights)
                _, status = experts_step(trees, x, Y[i], W[i], sc.weights, n_train, learn,
                                         sc.proba, sc.mask)
            sc.seen[:] = 1.0
        if not task or W[i] > 0.0:
            router_learn(inputs, router, rng, x, sc.z, sc.mask, sc.seen, lr, dropout)
        learned[0] += 1
        if status:
            return TREE_ROOM, i + 1
    return DONE, stop
