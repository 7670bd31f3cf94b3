"""The compiled (numba) Hoeffding tree: kernels, pool growth, snapshots, the River-API expert,
and accuracy beside River's HoeffdingTreeClassifier."""
from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import checks, tree
from river.datasets import synth

from experts import REGISTRY, CompiledHoeffdingTree
from experts._compiled_tree import (
    PRESIZE_MAX_BYTES,
    cap_bytes,
    grow_tree_pool,
    new_tree_pool,
    tree_learn,
    tree_pool_arrays,
    tree_pool_from_arrays,
    tree_predict_learn_many,
    tree_predict_proba,
    tree_reset,
)
from experts._encoding import RecordEncoder
from pipelines.sources.synthetic import STREAMS


def prequential(model, data) -> float:
    """Accuracy in % of predict-then-learn over ``data``."""
    hits = 0
    for x, y in data:
        proba = model.predict_proba_one(x)
        hits += bool(proba) and max(proba, key=proba.get) == y
        model.learn_one(x, y)
    return 100 * hits / len(data)


def mixed_stream(n: int = 3000) -> list[tuple[dict, str]]:
    """SEA records (10 % noise) with a nominal string feature that carries part of the concept,
    a feature missing every 7th record, and string labels: every encoder and kernel path."""
    out = []
    for i, (x, y) in enumerate(synth.SEA(seed=3, noise=0.1).take(n)):
        x = dict(x)
        x["band"] = ("low", "mid", "high", "top")[min(int(x[0] / 2.5), 3)]
        if i % 7 == 0:
            del x[1]
        out.append((x, f"class-{y}"))
    return out


@pytest.mark.parametrize("params", list(CompiledHoeffdingTree._unit_test_params()))
def test_river_check_estimator(params):
    checks.check_estimator(CompiledHoeffdingTree(**params))


def test_expert_equals_raw_kernels_and_the_batch_kernel():
    """The expert grows its pool on the fly; a pool sized up front, fed record by record and
    in one prequential batch, gives the same probabilities, bit for bit."""
    data = mixed_stream()
    expert = CompiledHoeffdingTree(grace_period=50, delta=1e-3)   # a confidence that splits
    encoder = RecordEncoder()
    for x, label in data:                  # first pass: every feature, value and class
        encoder.encode(x, learn=True)
        encoder.encode_label(label, learn=True)
    X = np.array([encoder.encode(x) for x, _ in data])
    y = np.array([encoder.encode_label(label) for _, label in data])
    pool = new_tree_pool(1, X.shape[1], encoder.n_classes, encoder.nominal_sizes(),
                         grace_period=50, delta=1e-3)
    pool = grow_tree_pool(pool, n_nodes=1024)
    batch_pool = tree_pool_from_arrays(tree_pool_arrays(pool))
    kernel = np.zeros((len(data), encoder.n_classes))
    for i, (x, label) in enumerate(data):
        proba = expert.predict_proba_one(x)
        tree_predict_proba(pool, 0, X[i], kernel[i])
        assert [proba.get(c, 0.0) for c in encoder.labels] == kernel[i].tolist() or (
            not proba and not kernel[i].any())
        expert.learn_one(x, label)
        assert tree_learn(pool, 0, X[i], y[i], 1.0) == 0
    batch = np.zeros_like(kernel)
    assert tree_predict_learn_many(batch_pool, 0, X, y, np.ones(len(y)), batch) == 0
    assert batch.tobytes() == kernel.tobytes()
    assert expert.n_nodes > 5


def test_snapshot_restore_continue_is_byte_identical():
    data = mixed_stream(3000)
    uninterrupted = CompiledHoeffdingTree(grace_period=50, delta=1e-3)
    for x, y in data[:1800]:
        uninterrupted.learn_one(x, y)
    assert uninterrupted.n_nodes > 1        # the snapshot holds splits, and more come after
    restored = CompiledHoeffdingTree.from_arrays(uninterrupted.to_arrays())
    for x, y in data[1800:]:
        assert restored.predict_proba_one(x) == uninterrupted.predict_proba_one(x)
        restored.learn_one(x, y)
        uninterrupted.learn_one(x, y)
    a, b = uninterrupted.to_arrays(), restored.to_arrays()
    assert a.keys() == b.keys()
    assert all(a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes() for k in a)
    assert restored.n_nodes > 9


def _trained_arrays() -> dict[str, np.ndarray]:
    model = CompiledHoeffdingTree(grace_period=50)
    for x, y in synth.SEA(seed=2, noise=0.1).take(5000):
        model.learn_one(x, y)
    assert model.n_nodes > 1
    return tree_pool_arrays(model.pool)


def _corrupt_cycle(a):
    a["branch_child"][0, 0] = 0          # the root as its own child: routing would loop


def _corrupt_feature(a):
    a["node_feature"][0, 0] = 99          # no such feature


def _corrupt_dtype(a):
    a["node_row"] = a["node_row"].astype(np.float64)


def _corrupt_extra(a):
    a["payload"] = np.zeros(3)


def _corrupt_sizes(a):
    a["sizes"][0, 0] = a["node_feature"].shape[1] + 1


def _corrupt_shape(a):
    a["gauss_mean"] = a["gauss_mean"][:, :, :, :1]


@pytest.mark.parametrize("corrupt", [_corrupt_cycle, _corrupt_feature, _corrupt_dtype,
                                     _corrupt_extra, _corrupt_sizes, _corrupt_shape])
def test_crafted_arrays_are_refused(corrupt):
    arrays = _trained_arrays()
    tree_pool_from_arrays(arrays)         # the genuine arrays load
    corrupt(arrays)
    with pytest.raises(ValueError):
        tree_pool_from_arrays(arrays)


def test_crafted_header_is_refused():
    model = CompiledHoeffdingTree()
    model.learn_one({"a": 1.0}, True)
    arrays = model.to_arrays()
    arrays["header.json"] = np.frombuffer(b"{not json", np.uint8)
    with pytest.raises(ValueError):
        CompiledHoeffdingTree.from_arrays(arrays)


def test_sea_accuracy_beside_river():
    """SEA (River's, 10 % noise, 20,000 records), both trees with MOA's and River's defaults
    (grace 200, delta 1e-7, tau 0.05, NBA leaves). Measured: compiled 86.63 %, River 86.47 %
    (19 nodes each)."""
    data = list(synth.SEA(seed=1, variant=0, noise=0.1).take(20_000))
    river_acc = prequential(tree.HoeffdingTreeClassifier(leaf_prediction="nba"), data)
    assert prequential(CompiledHoeffdingTree(), data) >= river_acc - 1.0


def test_led_accuracy_at_least_river():
    """LEDa (ours, MOA's LED, drifts at 25/50/75 %), 10,000 records, the paper's settings
    (grace 50). Measured: compiled 53.33 % with the segments nominal (as MOA declares them),
    River's tree 49.92 % (three drifts in 10,000 records: both are still near the root)."""
    stream = STREAMS["LEDa"](10_000, 0)
    data = list(stream)
    river_acc = prequential(REGISTRY["hoeffding-tree"](), data)
    nominal = CompiledHoeffdingTree(grace_period=50, nominal_features=tuple(stream.feature_names))
    assert prequential(nominal, data) >= river_acc


def test_nominal_new_class_missing_and_constant_features():
    rng = random.Random(5)
    model = CompiledHoeffdingTree(grace_period=50)
    colours = ["red", "blue"]
    hits = []
    for i in range(3000):
        if i == 1500:
            colours.append("green")                # a new value and a new class mid-stream
        colour = rng.choice(colours)
        x = {"colour": colour, "constant": 5.0, "noise": rng.random()}
        y = colours.index(colour)
        proba = model.predict_proba_one(x)
        hits.append(bool(proba) and max(proba, key=proba.get) == y)
        model.learn_one(x, y)
    assert sum(hits[-500:]) >= 490
    pool = model.pool
    used = pool.node_feature[0, :model.n_nodes]
    colour, constant = (model.encoder._position[k] for k in ("colour", "constant"))
    assert used[0] == colour and constant not in used      # a constant never splits
    proba = model.predict_proba_one({"constant": 5.0})      # colour missing: stops at the root
    assert set(proba) == {0, 1, 2} and abs(sum(proba.values()) - 1.0) < 1e-12


def test_size_cap_stops_splitting_but_keeps_learning():
    model = CompiledHoeffdingTree(grace_period=50, max_nodes=3)
    data = list(synth.SEA(seed=1, noise=0.1).take(6000))
    assert prequential(model, data) > 80.0
    assert model.n_nodes == 3


def test_pool_growth_keeps_trees_and_reset_makes_a_fresh_one():
    X = np.array([[x[k] for k in sorted(x)] for x, _ in synth.SEA(seed=4).take(2000)])
    y = np.array([int(label) for _, label in synth.SEA(seed=4).take(2000)])
    pool = new_tree_pool(2, 3, 2, grace_period=50)
    proba = np.zeros((2000, 2))
    tree_predict_learn_many(pool, 1, X, y, np.ones(2000), proba)
    grown = grow_tree_pool(pool, n_slots=3, n_classes=3, n_nodes=256,
                           nominal_values=np.array([0, 0, 0, 4]))
    assert grown.node_feature.shape == (3, 256) and grown.nom_count.shape[-1] == 4
    before, after = np.zeros(2), np.zeros(3)
    for row in X[:50]:
        tree_predict_proba(pool, 1, row, before)
        tree_predict_proba(grown, 1, np.append(row, np.nan), after)
        assert after[:2].tolist() == before.tolist() and after[2] == 0.0
    tree_reset(grown, 1)
    tree_predict_proba(grown, 1, np.append(X[0], np.nan), after)
    assert not after.any() and grown.sizes[1].tolist() == [1, 1, 0]


def test_pool_affordable_at_its_cap_is_sized_once_and_a_costly_one_doubles():
    """adaptive's pool shape on SEA (13 slots, cap 1,000, 3 numeric features, 2 classes) is
    allocated at its cap (its bytes as ``cap_bytes`` says) and never asks for room; a wide one
    (24 features, 16 classes) starts small; widening a cap-sized pool past the budget shrinks
    its node arrays to their use, every tree kept."""
    data = list(synth.SEA(seed=5, noise=0.1).take(20_000))
    X = np.array([[x[k] for k in sorted(x)] for x, _ in data])
    y = np.array([int(label) for _, label in data])
    pool = new_tree_pool(13, 3, 2, grace_period=50, delta=0.01, max_nodes=1000)
    size = cap_bytes(13, 1000, 2, np.zeros(3, np.int64))
    assert pool.node_feature.shape == (13, 1000) and pool.gauss_w.shape == (13, 1000, 2, 3)
    assert sum(a.nbytes for a in pool) == size <= PRESIZE_MAX_BYTES
    proba = np.zeros((len(X), 2))
    assert tree_predict_learn_many(pool, 0, X, y, np.ones(len(X)), proba) == 0
    assert pool.sizes[0, 0] > 50 and pool.node_feature.shape == (13, 1000)
    wide = new_tree_pool(13, 24, 16, max_nodes=1000)
    assert cap_bytes(13, 1000, 16, np.zeros(24, np.int64)) > PRESIZE_MAX_BYTES
    assert wide.node_feature.shape == (13, 32) and wide.row_learned.shape == (13, 32)
    widened = grow_tree_pool(pool, n_classes=16, nominal_values=np.zeros(24, np.int64))
    nodes, rows = int(pool.sizes[0, 0]), int(pool.sizes[0, 1])
    assert nodes <= widened.node_feature.shape[1] < 1000 and 2 * rows <= widened.gauss_w.shape[1]
    before, after = np.zeros(2), np.zeros(16)
    for row in X[:200]:
        tree_predict_proba(pool, 0, row, before)
        tree_predict_proba(widened, 0, np.concatenate([row, np.full(21, np.nan)]), after)
        assert after[:2].tolist() == before.tolist() and not after[2:].any()


def test_value_against_the_rest_split_when_multiway_is_ruled_out():
    """Two rare values (0.8 % each) and a common one: a multiway split has one branch over
    MOA's 1 % minimum, so it scores -inf; common-against-the-rest splits (as in MOA 2024)."""
    rng = random.Random(2)
    pool = new_tree_pool(1, 1, 2, np.array([3]), grace_period=50, delta=0.01)
    for _ in range(5000):
        u = rng.random()
        value = 1.0 if u < 0.008 else 2.0 if u < 0.016 else 0.0
        label = int(value != 0.0) if rng.random() < 0.9 else int(value == 0.0)
        tree_learn(pool, 0, np.array([value]), label, 1.0)
    assert pool.node_feature[0, 0] == 0 and pool.node_threshold[0, 0] == 0.0
    assert pool.node_n_branches[0, 0] == 2
    out = np.zeros(2)
    tree_predict_proba(pool, 0, np.array([2.0]), out)
    assert out.argmax() == 1


@settings(max_examples=40)
@given(st.lists(st.dictionaries(
    st.sampled_from(["a", "b", "c", 7]),
    st.one_of(st.none(), st.floats(allow_nan=True), st.sampled_from(["x", "y", "z"]),  # any mix
              st.integers(-3, 3)), max_size=4), min_size=1, max_size=30))
def test_encoder_json_round_trip_encodes_alike(records):
    encoder = RecordEncoder(nominal_features=["c"])
    for i, record in enumerate(records):
        encoder.encode(record, learn=True)
        encoder.encode_label(i % 3, learn=True)
    copy = RecordEncoder.from_json(encoder.to_json())
    assert copy.labels == encoder.labels and copy.version >= 0
    assert copy.nominal_sizes().tolist() == encoder.nominal_sizes().tolist()
    for record in records:
        assert copy.encode(record).tobytes() == encoder.encode(record).tobytes()


_REPEATED_NAME = '{"nominal_features": [], "features": [["a", null], ["a", null]], "labels": []}'


@pytest.mark.parametrize("text", ["", "[]", '{"features": 3}', _REPEATED_NAME])
def test_malformed_encoder_json_is_refused(text):
    with pytest.raises(ValueError):
        RecordEncoder.from_json(text)
