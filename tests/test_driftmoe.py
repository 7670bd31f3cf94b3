"""The DriftMoE paper's models on the compiled core: array snapshots that restore to the same
predictions and bytes, and accuracy floors on short paper streams."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines import CheckpointError, make_model, open_source
from pipelines.checkpoints.arrays import pack_arrays, unpack_arrays
from pipelines.checkpoints.envelope import seal, unseal
from pipelines.models import SNAPSHOT_SCHEMA, AdaptiveModel

SMALL = {"driftmoe-data": {"batch_size": 32, "hidden": (32, 16)},
         "driftmoe-task": {"hidden": (32, 16)}}


def _stream(n: int, name: str, seed: int = 1):
    return [(r.x, r.y) for r in open_source(f"synthetic:{name}", limit=n, seed=seed)]


@pytest.mark.parametrize("name", ["driftmoe-data", "driftmoe-task"])
@pytest.mark.parametrize("stream", ["LEDa", "SEAa"])
def test_snapshot_restore_continue_is_the_uninterrupted_model(name, stream):
    """Restore mid-stream (records JSON-decoded, as from Kafka), learn on: the same
    predictions and probabilities as a model never interrupted, and the same snapshot bytes."""
    rows = [json.loads(json.dumps({"x": x, "y": y})) for x, y in _stream(1500, stream)]
    plain, resumed = (make_model(name, seed=3, **SMALL[name]) for _ in range(2))
    for i, r in enumerate(rows):
        if i in (10, 700):   # early (before the first router step) and later
            resumed = AdaptiveModel.restore(resumed.snapshot(key="k"), key="k")
        assert resumed.predict_proba_one(r["x"]) == plain.predict_proba_one(r["x"])
        for model in (plain, resumed):
            model.learn_one(r["x"], r["y"])
    assert resumed.n_experts == plain.n_experts == (12 if name == "driftmoe-data" else
                                                    len({r["y"] for r in rows}))
    assert unseal(resumed.snapshot())[1] == unseal(plain.snapshot())[1]


def test_a_snapshot_whose_arrays_do_not_fit_is_refused():
    model = make_model("driftmoe-data", seed=0, **SMALL["driftmoe-data"])
    for x, y in _stream(300, "SEAa"):
        model.learn_one(x, y)
    meta, arrays = unpack_arrays(unseal(model.snapshot())[1])
    arrays["inputs.slot_of"] = np.full_like(arrays["inputs.slot_of"], 10**6)   # out of range
    with pytest.raises(CheckpointError, match="inputs.slot_of"):
        AdaptiveModel.restore(seal(pack_arrays(meta, arrays), schema=SNAPSHOT_SCHEMA))
    meta, arrays = unpack_arrays(unseal(model.snapshot())[1])
    arrays["router.w3"] = arrays["router.w3"][:, :5].copy()   # fewer outputs than experts
    with pytest.raises(CheckpointError):
        AdaptiveModel.restore(seal(pack_arrays(meta, arrays), schema=SNAPSHOT_SCHEMA))


def _prequential_accuracy(model, stream) -> float:
    right = 0
    for x, y in stream:
        right += model.predict_one(x) == y
        model.learn_one(x, y)
    return right / len(stream)


@pytest.mark.parametrize(("stream", "n", "floor"), [("SEAa", 10_000, 0.83),
                                                      ("LEDa", 5_000, 0.51)])
def test_driftmoe_data_accuracy_floor(stream, n, floor):
    """Paper settings (12 trees, 256x128 router, batch 256), model seed 0, stream seed 1:
    measured SEAa 10k 0.847, LEDa 5k 0.529 (10k: 0.622); floors ~1.5-2 points below."""
    assert _prequential_accuracy(make_model("driftmoe-data", seed=0), _stream(n, stream)) > floor


def test_driftmoe_task_learns_led():
    """MoE-Task is the router alone: an online MLP that beats chance (0.10) by far on LEDa."""
    assert _prequential_accuracy(make_model("driftmoe-task", seed=0),
                                 _stream(5_000, "LEDa")) > 0.62   # measured 0.643
