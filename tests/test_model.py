"""AdaptiveModel: River compatibility, the signed snapshot envelope, drift handling."""
from __future__ import annotations

import json

import pytest
from river import evaluate, metrics

from pipelines import CheckpointError, make_model, open_source
from pipelines.checkpoints.envelope import unseal
from pipelines.models import AdaptiveModel


def _stream(n: int, name: str = "SEAa", seed: int = 1):
    return [(r.x, r.y) for r in open_source(f"synthetic:{name}", limit=n, seed=seed)]


@pytest.mark.parametrize("name", ["adaptive", "driftmoe-data"])
def test_river_progressive_val_score_accepts_the_model(name):
    score = evaluate.progressive_val_score(_stream(3000), make_model(name, seed=0),
                                           metrics.Accuracy())
    assert score.get() > 0.75


def test_snapshot_restore_predicts_identically_and_is_signed():
    stream = _stream(3000)
    model = make_model("adaptive", seed=2)
    for x, y in stream[:2000]:
        model.learn_one(x, y)
    blob = model.snapshot(key="secret")
    restored = AdaptiveModel.restore(blob, key="secret")
    for x, y in stream[2000:]:
        assert restored.predict_proba_one(x) == model.predict_proba_one(x)
        model.learn_one(x, y)
        restored.learn_one(x, y)
    with pytest.raises(CheckpointError, match="unsigned"):
        AdaptiveModel.restore(model.snapshot(), key="secret")
    tampered = bytearray(blob)
    tampered[-10] ^= 0xFF
    with pytest.raises(CheckpointError, match="digest"):
        AdaptiveModel.restore(bytes(tampered), key="secret")
    with pytest.raises(CheckpointError, match="signature"):
        AdaptiveModel.restore(blob, key="another")


@pytest.mark.parametrize("name", ["adaptive", "driftmoe-data", "driftmoe-task"])
def test_a_restored_model_snapshots_to_the_same_bytes_as_an_uninterrupted_one(name):
    """Restore mid-stream, learn on: the state serialises to exactly the bytes of a model that
    was never interrupted (records JSON-decoded each time, as from Kafka, on LED's 24 features)."""
    rows = [json.loads(json.dumps({"x": x, "y": y})) for x, y in _stream(1200, "LEDa")]
    plain, resumed = make_model(name, seed=3), make_model(name, seed=3)
    for i, r in enumerate(rows):
        if i == 600:
            resumed = AdaptiveModel.restore(resumed.snapshot())
        for model in (plain, resumed):
            model.predict_one(r["x"])
            model.learn_one(r["x"], r["y"])
    assert unseal(resumed.snapshot())[1] == unseal(plain.snapshot())[1]


def test_driftmoe_task_predicts_the_same_whether_or_not_its_trees_learn():
    """MoE-Task predicts from its router alone, so training its one-vs-rest trees (the paper's
    code does) changes time and memory, never a prediction."""
    lazy, paper = (make_model("driftmoe-task", seed=1, hidden=(32, 16), train_experts=train)
                   for train in (False, True))
    for x, y in _stream(1500, "LEDa"):
        assert lazy.predict_proba_one(x) == paper.predict_proba_one(x)
        lazy.learn_one(x, y)
        paper.learn_one(x, y)
    assert lazy.n_experts == paper.n_experts == 10
    assert [e._n_learned for e in lazy._experts] == [0] * 10
    # every tree learned (from its class's first record on), and some split
    assert min(e._n_learned for e in paper._experts) > 1000
    assert sum(e.model.n_nodes > 1 for e in paper._experts) >= 3


def test_adaptive_grows_on_abrupt_drift_and_stays_within_budget():
    model = make_model("adaptive", seed=0, max_experts=5)
    kinds = []
    for x, y in _stream(20_000):
        model.predict_one(x)
        model.learn_one(x, y)
        kinds += [e["kind"] for e in model.events()]
        assert model.n_experts <= 5
    assert kinds.count("grow") + kinds.count("revive") >= 2


def test_capped_trees_stop_growing_and_restore_identically(monkeypatch):
    """With a tiny ``tree_max_mib`` River deactivates leaves; a model restored in between
    deactivates the same leaves, predicts exactly as the uninterrupted one and snapshots to the
    same bytes (the size estimate is counted, not measured); the capped model holds less."""
    import pipelines.models.adaptive as model_module

    monkeypatch.setattr(model_module, "TREE_MEMORY_CHECK_PERIOD", 500)
    rows = json.loads(json.dumps([[x, y] for x, y in _stream(8000)]))   # as decoded from Kafka
    plain, resumed = (make_model("adaptive", seed=2, tree_max_mib=0.05) for _ in range(2))
    free = make_model("adaptive", seed=2, tree_max_mib=100.0)
    plain_predictions, resumed_predictions = [], []
    for i, (x, y) in enumerate(rows):
        if i == 4000:
            resumed = AdaptiveModel.restore(resumed.snapshot())
        plain_predictions.append(plain.predict_proba_one(x))
        resumed_predictions.append(resumed.predict_proba_one(x))
        free.predict_one(x)
        for model in (plain, resumed, free):
            model.learn_one(x, y)

    def trees(model):
        return [e.model for e in model._pool.experts
                if hasattr(getattr(e, "model", None), "max_size")]

    assert trees(plain) and all(t.max_size == 0.05 for t in trees(plain))
    inactive = [t._n_inactive_leaves for t in trees(plain)]
    assert sum(inactive) > 0
    assert [t._n_inactive_leaves for t in trees(resumed)] == inactive
    assert resumed_predictions == plain_predictions
    assert unseal(resumed.snapshot())[1] == unseal(plain.snapshot())[1]
    assert len(plain.snapshot()) < len(free.snapshot())


def test_unknown_model_is_a_value_error():
    with pytest.raises(ValueError, match="unknown model"):
        make_model("nope")


def test_adaptive_asks_only_the_experts_it_needs():
    """Past warm-up, a record is predicted by at most top_k + probes experts; every expert is
    still asked regularly (the probe rotation), and probes >= max_experts asks them all."""
    asked_counts, asked_ever = [], set()
    model = make_model("adaptive", seed=0, initial_experts=6, max_experts=6, top_k=2, probes=1,
                       warmup=100)
    for x, y in _stream(1500):
        probas = model._scores(x)[1]
        asked = [i for i, p in enumerate(probas) if p is not None]
        asked_counts.append(len(asked))
        asked_ever.update(asked)
        model.learn_one(x, y)
    assert max(asked_counts[200:]) <= 3 and asked_counts[0] == 6   # all warm up at first
    assert asked_ever == set(range(6))
    everyone = make_model("adaptive", seed=0, initial_experts=6, max_experts=6, probes=6)
    x, y = _stream(1)[0]
    everyone.learn_one(x, y)
    assert all(p is not None for p in everyone._scores(x)[1])
