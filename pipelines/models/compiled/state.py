"""The arrays of a compiled pool model that are its own (the experts, router and detectors have
theirs in their packages): pool bookkeeping, settings and scratch."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numba import njit
from numba.core import types
from numba.experimental import structref

# settings (a float64 array the kernel reads)
(TOP_K, PROBES, WARMUP, BAGGING_LAMBDA, MLP_LR, ROUTER_LR, TEMPERATURE, DROPOUT, ADWIN_DELTA,
 LOG_RBOCPD_DELTA, HALF_LIFE_DECAY, N_SETTINGS) = range(12)


class Scratch(NamedTuple):
    """Work arrays of one kernel call (not state): the router stretch and per-expert outputs."""

    z: np.ndarray        # (stretch, inputs): standardised inputs of the stretch
    logits: np.ndarray   # (stretch, slots)
    h1: np.ndarray       # (stretch, router h1)
    h2: np.ndarray       # (stretch, router h2)
    proba: np.ndarray    # (slots, classes): asked experts' probabilities, by position
    mixture: np.ndarray  # (classes,)
    z_learn: np.ndarray  # (inputs,)
    hidden: np.ndarray   # (3, mlp hidden): MLP scratch
    p: np.ndarray        # (classes,)
    flags: np.ndarray    # (4, slots) int64: asked, top, trained, order scratch
    vec: np.ndarray      # (3, slots) float64: scores, mask, seen
    stats: np.ndarray    # (3, inputs): look-ahead copy of the input statistics


def new_scratch(stretch: int, n_inputs: int, n_slots: int, h1: int, h2: int, n_classes: int,
                hidden: int) -> Scratch:
    return Scratch(np.zeros((stretch, n_inputs)), np.zeros((stretch, n_slots)),
                   np.zeros((stretch, h1)), np.zeros((stretch, h2)),
                   np.zeros((n_slots, n_classes)), np.zeros(n_classes), np.zeros(n_inputs),
                   np.zeros((3, hidden)), np.zeros(n_classes),
                   np.zeros((4, n_slots), dtype=np.int64), np.zeros((3, n_slots)),
                   np.zeros((3, n_inputs)))


@structref.register
class KernelStateType(types.StructRef):
    """numba type of :class:`KernelState`."""

    def preprocess_fields(self, fields: Any) -> tuple:
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class KernelState(structref.StructRefProxy):
    """Every array the prequential loop reads, behind one reference: passing it to the kernel
    costs one pointer, where passing the ~100 arrays themselves costs ~1 us each (numba checks
    every array argument's type in Python), most of a one-record call. Rebuilt by the model
    whenever it replaces an array (growth, restore)."""


KERNEL_STATE_FIELDS = ("cfg", "inputs", "mlp", "trees", "router", "err_det", "label_det",
                       "adwin", "event_det", "sentinel", "sentinel_tree", "pool", "rng",
                       "scratch")
structref.define_proxy(KernelState, KernelStateType, list(KERNEL_STATE_FIELDS))


@njit(cache=True)
def make_kernel_state(cfg, inputs, mlp, trees, router, err_det, label_det, adwin, event_det,
                      sentinel, sentinel_tree, pool, rng, scratch):
    """A :class:`KernelState` over these parts (no copies)."""
    return KernelState(cfg, inputs, mlp, trees, router, err_det, label_det, adwin, event_det,
                       sentinel, sentinel_tree, pool, rng, scratch)
