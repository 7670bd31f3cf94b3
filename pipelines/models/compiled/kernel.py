"""The compiled prequential loop of ``adaptive``: predict record i, learn it, then record i + 1,
for a whole batch, leaving compiled code only when Python must change the pool or its arrays.

:func:`run` returns ``(status, i, reason)``:

- ``DONE``: records ``start .. stop`` are done;
- ``NEEDS_ROOM``: record ``i`` needs bigger arrays first (a new feature, nominal value, input
  slot or class): nothing of record ``i`` was done; grow and call again from ``i``;
- ``DRIFT`` (``reason & 7``: 1 error, 2 label, 3 expert, an internal detector asking the pool
  to adapt; ``reason & 16`` / ``& 32``: the model-level detector or the sentinel flagged a
  change, the operator's ``drift`` event, which changes nothing in the model; ``reason & 64``:
  the sentinel's frozen copy is due) or ``TREE_ROOM``: record ``i`` was learned; Python
  handles the drift (grow / revive / prune, the event, the copy) or grows the trees, then
  calls again from ``i + 1``.

Record-at-a-time (``learn_one``) is a call with one record, and ``predict_proba_one`` a call with
``learn=False``, so both paths run the same arithmetic in the same order: the same predictions.
(Past 300 lines: the loop and its per-record steps stay in one module so numba compiles them as
one unit; split further, each caller relinks and recompiles its callees, `bench/ANALYSIS.md`.)
"""
from __future__ import annotations

import math

from numba import njit

from detectors._compiled import adwin_update, rbocpd_update
from detectors._compiled_sentinel import SETTLE, sentinel_drop, sentinel_due, sentinel_update
from detectors._compiled_shift import shift_restart, shift_update
from experts._compiled_inputs import (
    inputs_allot,
    inputs_learn,
    inputs_missing,
    inputs_standardise,
)
from experts._compiled_mlp import mlp_learn
from experts._compiled_pool import (
    ERR_FAST,
    ERR_SLOW,
    KIND_MLP,
    N_CLASSES,
    N_LEARNED,
    N_POS,
    N_RECENT,
    PROBE_CURSOR,
    accuracy,
    expert_proba,
)
from experts._compiled_pool import recent_accuracy as pool_recent_accuracy
from experts._compiled_rng import rng_poisson
from experts._compiled_tree import tree_predict_learn
from pipelines.models.compiled.state import (
    ADWIN_DELTA,
    BAGGING_LAMBDA,
    DROPOUT,
    HALF_LIFE_DECAY,
    LOG_RBOCPD_DELTA,
    MLP_LR,
    PROBES,
    ROUTER_LR,
    TEMPERATURE,
    TOP_K,
    WARMUP,
)
from router._compiled import router_buffer, router_logits, router_step

DONE, NEEDS_ROOM, DRIFT, TREE_ROOM = range(4)
REASONS = ("", "error", "label", "expert")
TREE_FLAG, EVENT_FLAG, SENTINEL_FLAG, COPY_FLAG = 8, 16, 32, 64   # beside the internal reason
_ASKED, _TOP, _TRAIN = range(3)      # rows of Scratch.flags
_SCORE, _MASK, _SEEN = range(3)      # rows of Scratch.vec


@njit(cache=True, nogil=True)
def _needs_room(inputs, trees, pool, X, Y, i: int, learn: bool) -> bool:
    """Whether record ``i`` needs bigger arrays: a feature past the pool's, a nominal value
    past a tree's room, more input slots than allotted room, a class not seen yet."""
    n_features = pool.recent_x.shape[1]
    row = X[i]
    for f in range(n_features, row.shape[0]):
        if not math.isnan(row[f]):
            return True
    x = row[:n_features]
    for f in range(n_features):
        room = trees.nominal_values[0, f]
        if room > 0 and not math.isnan(x[f]) and x[f] >= room:
            return True
    if learn and (Y[i] >= pool.ints[N_CLASSES]
                  or inputs.used[0] + inputs_missing(inputs, x) > inputs.count.shape[0]):
        return True
    return False


@njit(cache=True, nogil=True)
def _stretch(cfg, inputs, router, pool, X, i: int, n: int, sc) -> None:
    """Router logits of records ``i .. i+n`` (no router step between them) as one product over
    their inputs standardised with look-ahead statistics (slots allotted inside the stretch have
    zero router rows, so leaving them out changes nothing)."""
    n_features = pool.recent_x.shape[1]
    count, mean, m2 = sc.stats[0], sc.stats[1], sc.stats[2]
    count[:] = inputs.count
    mean[:] = inputs.mean
    m2[:] = inputs.m2
    for r in range(n):
        x = X[i + r, :n_features]
        inputs_standardise(inputs, x, sc.z[r], count, mean, m2)
        if r + 1 < n:
            inputs_learn(inputs, x, count, mean, m2)
    n_pos = pool.ints[N_POS]
    router_logits(router, sc.z, n, inputs.used[0], pool.positions[:n_pos], n_pos, sc.h1, sc.h2,
                  sc.logits)


@njit(cache=True, nogil=True)
def _predict(cfg, inputs, mlp, trees, pool, rng, x, z, logits, sc, learn: bool, y: int,
             w: float) -> tuple[int, float, bool]:
    """The top-k mixture's class and probability for one record (``-1, 0`` when no top expert
    has an opinion), and whether a tree asked for room; fills the asked/top flags, scores and
    the asked experts' probabilities (by position). With ``learn``, also draws each expert's
    online-bagging count (``_draw_counts``) and lets the trees that will learn the record
    predict and learn it in one pass (naive Bayes scored once; nothing reads a tree between
    its prediction and its learning)."""
    n_pos = pool.ints[N_POS]
    n_classes = pool.ints[N_CLASSES]
    flags, scores, proba = sc.flags, sc.vec[_SCORE], sc.proba
    temperature = cfg[TEMPERATURE]
    top = -math.inf
    for p in range(n_pos):
        top = max(top, logits[pool.positions[p]] / temperature)
    total = 0.0
    for p in range(n_pos):
        scores[p] = math.exp(logits[pool.positions[p]] / temperature - top)
        total += scores[p]
    for p in range(n_pos):
        scores[p] = scores[p] / total * accuracy(pool, pool.positions[p])
    flags[:, :] = 0
    k = min(int(cfg[TOP_K]), n_pos)
    for _ in range(k):   # stable descending order: the first of equal scores wins
        best = -1
        for p in range(n_pos):
            if not flags[_TOP, p] and (best < 0 or scores[p] > scores[best]):
                best = p
        flags[_TOP, best] = 1
        flags[_ASKED, best] = 1
    warmup = cfg[WARMUP]
    n_asked = k
    for p in range(n_pos):
        if pool.age[pool.positions[p]] < warmup and not flags[_ASKED, p]:
            flags[_ASKED, p] = 1
            n_asked += 1
    cursor = pool.ints[PROBE_CURSOR]
    for _ in range(min(int(cfg[PROBES]), n_pos - n_asked)):
        while flags[_ASKED, cursor % n_pos]:
            cursor += 1
        flags[_ASKED, cursor % n_pos] = 1
        cursor += 1
    pool.ints[PROBE_CURSOR] = cursor
    if learn:
        _draw_counts(cfg, pool, rng, sc)
    room = False
    mixture = sc.mixture
    mixture[:] = 0.0
    for p in range(n_pos):
        if flags[_ASKED, p]:
            s = pool.positions[p]
            if learn and pool.kind[s] != KIND_MLP and flags[_TRAIN, p] * w > 0.0:
                proba[p, :] = 0.0
                room |= tree_predict_learn(trees, s, x, y, flags[_TRAIN, p] * w, proba[p]) != 0
            else:
                expert_proba(pool, inputs, mlp, trees, s, x, z, sc.hidden[0], proba[p])
            if flags[_TOP, p]:
                for c in range(n_classes):
                    mixture[c] += scores[p] * proba[p, c]
    total = mixture[:n_classes].sum()
    if total <= 0.0:   # every top score is 0 (e.g. no expert right yet): weigh them equally
        for p in range(n_pos):
            if flags[_TOP, p]:
                for c in range(n_classes):
                    mixture[c] += proba[p, c]
        total = mixture[:n_classes].sum()
    best = -1
    for c in range(n_classes):
        if mixture[c] > 0.0 and (best < 0 or mixture[c] > mixture[best]):
            best = c
    if total > 0.0:
        mixture /= total
    return best, (mixture[best] if best >= 0 else 0.0), room


@njit(cache=True, nogil=True)
def _outcomes(cfg, pool, sc, y: int) -> None:
    """Score the asked experts (recent accuracy), age every expert, and build the router's
    multi-hot target by slot: every asked expert that was right; if none, the asked one
    giving ``y`` the highest probability."""
    n_pos = pool.ints[N_POS]
    mask, seen = sc.vec[_MASK], sc.vec[_SEEN]
    mask[:] = 0.0
    seen[:] = 0.0
    decay = cfg[HALF_LIFE_DECAY]
    n_classes = pool.ints[N_CLASSES]
    any_right = False
    fallback, fallback_p = -1, -math.inf
    for p in range(n_pos):
        s = pool.positions[p]
        pool.age[s] += 1
        if not sc.flags[_ASKED, p]:
            continue
        row = sc.proba[p]
        best = -1
        for c in range(n_classes):
            if row[c] > 0.0 and (best < 0 or row[c] > row[best]):
                best = c
        right = best == y and best >= 0
        pool.hits[s] = pool.hits[s] * decay + (1.0 if right else 0.0)
        pool.seen[s] = pool.seen[s] * decay + 1.0
        seen[s] = 1.0
        if right:
            mask[s] = 1.0
            any_right = True
        if row[y] > fallback_p:
            fallback, fallback_p = s, row[y]
    if not any_right and fallback >= 0:
        mask[fallback] = 1.0


@njit(cache=True, nogil=True)
def _draw_counts(cfg, pool, rng, sc) -> None:
    """``flags[_TRAIN, p]``: how many times expert ``p`` learns this record, a Poisson(lambda)
    count (online bagging; 1 with lambda 0) for the top-k and the experts warming up (aged
    below ``warmup`` once this record is counted), 0 for the others."""
    lam = cfg[BAGGING_LAMBDA]
    for p in range(pool.ints[N_POS]):
        trained = sc.flags[_TOP, p] or pool.age[pool.positions[p]] + 1 < cfg[WARMUP]
        sc.flags[_TRAIN, p] = (rng_poisson(rng, lam) if lam > 0.0 else 1) if trained else 0


@njit(cache=True, nogil=True)
def _train(cfg, inputs, mlp, pool, rng, z, y: int, w: float, sc) -> None:
    """Train the MLP experts drawn by ``_draw_counts`` with weight count x ``w`` (the trees
    learned the record as they predicted it)."""
    for p in range(pool.ints[N_POS]):
        s = pool.positions[p]
        k = sc.flags[_TRAIN, p]
        if pool.kind[s] == KIND_MLP and k * w > 0.0:   # a zero weight teaches nothing
            mlp_learn(mlp, s, z, inputs.used[0], pool.ints[N_CLASSES], y, k * w, cfg[MLP_LR],
                      rng, sc.hidden[0], sc.p, sc.hidden[1])


@njit(cache=True, nogil=True)
def _watch(cfg, pool, err_det, label_det, adwin, sc, error: bool, y: int) -> int:
    """Feed the detectors; the drift reason (1 error, 2 label, 3 expert), 0 for none. Only a
    rise in error counts (a fall is the pool learning); label shift counts either way."""
    e = 1.0 if error else 0.0
    error_drift = rbocpd_update(err_det, 1 if error else 0, False, cfg[LOG_RBOCPD_DELTA])
    floats = pool.floats
    floats[ERR_FAST] += (e - floats[ERR_FAST]) / 50.0
    floats[ERR_SLOW] += (e - floats[ERR_SLOW]) / 1000.0
    worse = floats[ERR_FAST] > floats[ERR_SLOW]
    label_drift = rbocpd_update(label_det, y, True, cfg[LOG_RBOCPD_DELTA])
    n_pos = pool.ints[N_POS]
    best, best_acc = 0, -1.0
    for p in range(n_pos):
        a = accuracy(pool, pool.positions[p])
        if a > best_acc:
            best, best_acc = p, a
    expert_drift = False
    for p in range(n_pos):
        if sc.flags[_ASKED, p]:
            s = pool.positions[p]
            if adwin_update(adwin, s, 1.0 - sc.vec[_MASK, s], cfg[ADWIN_DELTA]) and p == best:
                expert_drift = True
    if error_drift and worse:
        return 1
    if label_drift:
        return 2
    if expert_drift and worse:
        return 3
    return 0


@njit(cache=True, nogil=True)
def _watch_model(state, row, error: bool, y: int) -> int:
    """The operator's detectors on one learned record (``row`` its encoded features): the
    live ensemble's windowed tests, else the sentinel's frozen copy; a flag by either restarts
    the other. Returns the reason bits: EVENT_FLAG / SENTINEL_FLAG, COPY_FLAG when a copy is
    due."""
    pool, event_det, sentinel, tree = state.pool, state.event_det, state.sentinel, \
        state.sentinel_tree
    position = pool.ints[N_LEARNED]
    if shift_update(event_det, error, y, pool.ints[N_CLASSES]):
        flag = EVENT_FLAG
    elif sentinel_update(sentinel, tree, row[:tree.nominal_values.shape[1]], y):
        shift_restart(event_det)
        flag = SENTINEL_FLAG
    else:
        return COPY_FLAG if sentinel_due(sentinel, position + 1) else 0
    sentinel_drop(sentinel, position + 1 + SETTLE)
    return flag


@njit(cache=True, nogil=True)
def run(state, X, Y, W, start: int, stop: int, learn: bool, preds, conf) -> tuple[int, int, int]:
    """The prequential loop over records ``start .. stop`` of ``X`` (encoded rows), labels
    ``Y`` (class indices) and weights ``W``, on the arrays of ``state`` (a KernelState);
    ``learn=False`` predicts record ``start`` only and changes nothing. Predictions (class
    index, -1 none) and their probability go to ``preds`` and ``conf``. See the module
    docstring for the returned status."""
    cfg, inputs, mlp, trees, router = state.cfg, state.inputs, state.mlp, state.trees, state.router
    err_det, label_det, adwin, pool = state.err_det, state.label_det, state.adwin, state.pool
    rng, sc = state.rng, state.scratch
    n_features = pool.recent_x.shape[1]
    batch = router.buf_z.shape[0]
    stretch_start, stretch_end = start, start
    z = sc.z_learn
    for i in range(start, stop):
        if _needs_room(inputs, trees, pool, X, Y, i, learn):
            return NEEDS_ROOM, i, 0
        if i >= stretch_end:
            n = min(stop - i, batch - router.ints[0]) if learn else 1
            _stretch(cfg, inputs, router, pool, X, i, n, sc)
            stretch_start, stretch_end = i, i + n
        x = X[i, :n_features]
        inputs_standardise(inputs, x, z, inputs.count, inputs.mean, inputs.m2)
        cursor = pool.ints[PROBE_CURSOR]
        y, w = (Y[i], W[i]) if learn else (0, 0.0)
        pred, p, room = _predict(cfg, inputs, mlp, trees, pool, rng, x, z,
                                 sc.logits[i - stretch_start], sc, learn, y, w)
        preds[i] = pred
        conf[i] = p
        if not learn:
            pool.ints[PROBE_CURSOR] = cursor
            return DONE, i + 1, 0
        inputs_allot(inputs, x)
        inputs_learn(inputs, x, inputs.count, inputs.mean, inputs.m2)
        inputs_standardise(inputs, x, z, inputs.count, inputs.mean, inputs.m2)
        _outcomes(cfg, pool, sc, y)
        if router_buffer(router, z, inputs.used[0], sc.vec[_MASK], sc.vec[_SEEN]):
            router_step(router, rng, inputs.used[0], cfg[ROUTER_LR], cfg[DROPOUT])
            stretch_end = i + 1
        _train(cfg, inputs, mlp, pool, rng, z, y, w, sc)
        r = pool.ints[N_LEARNED] % pool.recent_y.shape[0]
        pool.recent_x[r] = x
        pool.recent_y[r] = y
        pool.ints[N_RECENT] = min(pool.ints[N_RECENT] + 1, pool.recent_y.shape[0])
        reason = _watch(cfg, pool, err_det, label_det, adwin, sc, pred != y, y)
        reason += _watch_model(state, X[i], pred != y, y)
        pool.ints[N_LEARNED] += 1
        if reason:
            return DRIFT, i + 1, reason + (TREE_FLAG if room else 0)
        if room:
            return TREE_ROOM, i + 1, 0
    return DONE, stop, 0


@njit(cache=True, nogil=True)
def recent_accuracy(state, s: int) -> float:
    """Slot ``s``'s accuracy on the recent records (the revival test) over a KernelState: one
    cheap call from the pool's lifecycle instead of one with ~50 arrays."""
    sc = state.scratch
    return pool_recent_accuracy(state.pool, state.inputs, state.mlp, state.trees, s, sc.z_learn,
                            sc.hidden[0], sc.p)
