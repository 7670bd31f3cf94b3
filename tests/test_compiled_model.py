"""The compiled ``adaptive``: the batch path equals the record path on every bench stream,
snapshot/restore/continue equals an uninterrupted run, crafted blobs are refused without running
anything, and accuracy floors on short streams."""
from __future__ import annotations

import io
import json
import os
import pickle
import struct
from pathlib import Path

import numba
import numpy as np
import pytest

from pipelines import CheckpointError, make_model, open_source
from pipelines.checkpoints.arrays import pack_arrays, unpack_arrays
from pipelines.checkpoints.envelope import seal, unseal
from pipelines.models import SNAPSHOT_SCHEMA, AdaptiveModel

ELEC = Path(os.environ.get("DRIFTFLOW_DATASETS", Path(__file__).resolve().parents[2]
                           / "shared" / "datasets")) / "elecNormNew.arff"
STREAMS = ["LEDa", "LEDg", "SEAa", "SEAg", "RBFm", "RBFf", "elec"]


def _records(name: str, n: int, seed: int = 0) -> tuple[list[dict], list]:
    if name == "elec":
        if not ELEC.exists():
            pytest.fail(f"the Electricity dataset is missing at {ELEC} (DRIFTFLOW_DATASETS)")
        source = open_source(f"file:{ELEC}", target="class", limit=n)
    else:
        source = open_source(f"synthetic:{name}", limit=n, seed=seed)
    records = [(r.x, r.y) for r in source]
    return [x for x, _ in records], [y for _, y in records]


@pytest.mark.parametrize("name", STREAMS)
def test_batch_path_predicts_as_the_record_path(name):
    """learn_predict_many over uneven batches == predict_one then learn_one per record: the
    same predictions, events and snapshot bytes."""
    X, y = _records(name, 2500)
    batched, single = make_model("adaptive", seed=4), make_model("adaptive", seed=4)
    cuts = [0, 1, 700, 701, 1900, len(X)]
    batch_predictions = []
    for a, b in zip(cuts, cuts[1:]):
        batch_predictions += batched.learn_predict_many(X[a:b], y[a:b])
    record_predictions = []
    for x, label in zip(X, y):
        record_predictions.append(single.predict_one(x))
        single.learn_one(x, label)
    assert batch_predictions == record_predictions
    assert batched.events() == single.events()
    assert unseal(batched.snapshot())[1] == unseal(single.snapshot())[1]


@pytest.mark.parametrize("name", ["LEDa", "elec"])
def test_snapshot_restore_continue_equals_uninterrupted(name):
    """Restored twice mid-stream (records JSON-decoded, as from Kafka): the same predictions
    and, at the end, the same snapshot bytes as a model never interrupted."""
    X, y = _records(name, 3000)
    X = json.loads(json.dumps(X))
    plain, resumed = make_model("adaptive", seed=2), make_model("adaptive", seed=2)
    plain_predictions = plain.learn_predict_many(X, y)
    resumed_predictions = []
    for a, b in ((0, 1000), (1000, 2200), (2200, 3000)):
        if a:
            resumed = AdaptiveModel.restore(resumed.snapshot(key="k"), key="k")
        resumed_predictions += resumed.learn_predict_many(X[a:b], y[a:b])
    assert resumed_predictions == plain_predictions
    assert unseal(resumed.snapshot())[1] == unseal(plain.snapshot())[1]


def test_sample_weight_is_honoured():
    """w scales the experts' updates: weight 0 learns nothing into them, so predictions of an
    expert-only model stay those of a fresh one's."""
    X, y = _records("SEAa", 400)
    zero, full = make_model("adaptive", seed=1), make_model("adaptive", seed=1)
    for x, label in zip(X, y):
        zero.learn_one(x, label, w=0.0)
        full.learn_one(x, label, w=1.0)
    assert not zero.mlp.steps.any() and full.mlp.steps.any()
    assert zero.trees.node_class_w.sum() == 0.0 < full.trees.node_class_w.sum()


@pytest.mark.parametrize("name, floor", [("SEAa", 0.85), ("LEDa", 0.66)])
def test_accuracy_floor_on_short_streams(name, floor):
    X, y = _records(name, 10_000)
    predictions = make_model("adaptive", seed=0).learn_predict_many(X, y)
    assert np.mean([p == t for p, t in zip(predictions, y)]) > floor


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/driftflow-pwned",))


def _model_blob() -> bytes:
    X, y = _records("SEAa", 300)
    model = make_model("adaptive", seed=0)
    model.learn_predict_many(X, y)
    return model.snapshot()


def _rebody(body: bytes, **changes) -> bytes:
    """A body with some arrays replaced (name -> array, or None to drop)."""
    meta, arrays = unpack_arrays(body)
    for name, value in changes.items():
        name = name.replace("__", ".")
        if value is None:
            del arrays[name]
        else:
            arrays[name] = value
    return pack_arrays(meta, arrays)


def test_crafted_blobs_are_refused_and_run_nothing(tmp_path):
    marker = Path("/tmp/driftflow-pwned")
    marker.unlink(missing_ok=True)
    body = unseal(_model_blob())[1]
    meta, arrays = unpack_arrays(body)
    bad_bodies = {
        "pickle": pickle.dumps(_Boom()),
        "npz with object array": _npz_with_object(),
        "truncated": body[: len(body) // 2],
        "extra bytes": body + b"\0" * 8,
        "missing array": _rebody(body, pool__kind=None),
        "wrong dtype": _rebody(body, pool__kind=arrays["pool.kind"].astype(np.float64)),
        "wrong shape": _rebody(body, mlp__w1=np.zeros((2, 2, 2))),
        "index out of range": _rebody(body, pool__positions=arrays["pool.positions"] + 1000),
        "unknown model": pack_arrays({**meta, "model": "os.system"}, arrays),
        "bad settings": pack_arrays({**meta, "settings": {"__class__": 1}}, arrays),
        "bad header": body[:5] + struct.pack("<I", 10**9) + body[9:],
    }
    for why, bad in bad_bodies.items():
        with pytest.raises(CheckpointError):
            AdaptiveModel.restore(seal(bad, schema=SNAPSHOT_SCHEMA))
        assert not marker.exists(), why


def _npz_with_object() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, a=np.array([_Boom()], dtype=object))
    return buffer.getvalue()


def test_unpack_refuses_object_and_big_endian_dtypes():
    good = pack_arrays({}, {"a": np.arange(3)})
    assert unpack_arrays(good)[1]["a"].tolist() == [0, 1, 2]
    for dtype in ("|O", ">f8", "<f4"):
        header = json.dumps({"meta": {}, "arrays": [["a", dtype, [3], 0]]}).encode()
        blob = b"DFAR\x01" + struct.pack("<I", len(header)) + header
        blob += b"\0" * (-len(blob) % 8) + b"\0" * 24
        with pytest.raises(CheckpointError, match="dtype"):
            unpack_arrays(blob)
    with pytest.raises(TypeError):
        pack_arrays({}, {"a": np.array(["x"], dtype=object)})


def test_host_batches_give_the_record_path_outputs():
    """ModelHost.process_many (the runners' path) == process per item: the same predictions,
    dead letters, events and counts, with bad and unlabelled records mixed in."""
    from pipelines.host import ModelHost
    from pipelines.records import DeadLetter, Record

    X, y = _records("SEAg", 1500)
    items = []
    for i, (x, label) in enumerate(zip(X, y)):
        if i % 97 == 5:
            x = {**x, "bad": float("nan")}         # invalid features: a dead letter
        if i % 89 == 7:
            label = None                           # unlabelled: predicted, skipped
        items.append(Record(key=None, id=i, x=x, y=label, offset=i, partition=0))
    items.insert(300, DeadLetter(10_000, "undecodable", raw=b"?", partition=0))
    by_record, by_batch = (ModelHost(make_model("adaptive", seed=5)) for _ in range(2))
    single = [by_record.process(item) for item in items]
    batched = []
    for a in range(0, len(items), 400):
        batched += by_batch.process_many(items[a:a + 400])
    assert batched == single
    assert by_batch.take_events() == by_record.take_events()
    assert by_batch.summary(1.0) == by_record.summary(1.0)
    assert by_batch.dead_letters >= 15 and by_batch.skipped >= 15


def test_a_new_model_has_its_lifecycle_kernels_compiled_before_the_first_record() -> None:
    """The revival test and the router's output drop run first at a later drift; a built model
    has them compiled already (else a first run stalls in mid-stream to compile them)."""
    from pipelines.models.compiled import kernel
    from router._compiled import router_drop_output

    model = make_model("adaptive", seed=0)
    state_type = numba.typeof(model._kernel_state())
    assert (state_type, numba.int64) in kernel.recent_accuracy.overloads
    assert (numba.typeof(model.router), numba.int64) in router_drop_output.overloads
