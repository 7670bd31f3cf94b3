"""The checkpoint envelope and its storage: signed headers, hostile blobs, failed writes.

The property tests run 10,000 generated cases in all (arbitrary bytes, mutations of real
checkpoints, headers of every JSON shape, round trips); each case is one `unseal` call.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.checkpoints import KEY_ENV, CheckpointError, read_bytes, seal, unseal, write_atomic
from pipelines.checkpoints.envelope import FORMAT_VERSION, MAGIC

KEY = b"k" * 32
PROPERTY = settings(deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _blob(header: object, body: bytes = b"body") -> bytes:
    raw = json.dumps(header).encode()
    return MAGIC + struct.pack(">I", len(raw)) + raw + body


def _header_of(blob: bytes) -> dict:
    (size,) = struct.unpack(">I", blob[4:8])
    return json.loads(blob[8:8 + size])


def _with_header(blob: bytes, header: dict) -> bytes:
    (size,) = struct.unpack(">I", blob[4:8])
    return _blob(header, blob[8 + size:])


def test_round_trip_signed_and_unsigned(monkeypatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    blob = seal(b"\x00payload", schema="s/1", meta={"records": 3})
    header, body = unseal(blob, schema="s/1")
    assert body == b"\x00payload" and header["meta"] == {"records": 3}
    assert header["hmac_sha256"] is None
    with pytest.raises(CheckpointError, match="unsigned checkpoint refused"):
        unseal(blob, key=KEY)
    signed = seal(b"\x00payload", schema="s/1", key=KEY)
    assert unseal(signed, key=KEY)[1] == b"\x00payload"
    with pytest.raises(CheckpointError, match="signature does not match"):
        unseal(signed, key=b"another key")
    monkeypatch.setenv(KEY_ENV, KEY.decode())
    assert unseal(signed)[1] == b"\x00payload"            # the key from the environment
    with pytest.raises(CheckpointError, match="holds 's/1', expected 't/1'"):
        unseal(signed, schema="t/1")


def test_any_contiguous_buffer_unseals_to_the_same_bytes() -> None:
    """bytes, bytearray and memoryview blobs are read through one view (the body copied once):
    the same header and body, as bytes; a strided view is a CheckpointError."""
    blob = seal(b"\x00payload" * 100, schema="s/1", key=KEY, meta={"records": 1})
    expected = unseal(blob, key=KEY)
    for form in (bytearray(blob), memoryview(blob), memoryview(bytearray(blob))):
        header, body = unseal(form, key=KEY)
        assert (header, body) == expected and type(body) is bytes
    with pytest.raises(CheckpointError, match="contiguous"):
        unseal(memoryview(blob)[::2], key=KEY)


@pytest.mark.parametrize("field, value", [
    ("schema", "driftflow.other/1"), ("meta", {"records": 10**6}),
    ("created_at", "1970-01-01T00:00:00+00:00"), ("extra", "field"),
])
def test_signature_covers_the_header(field: str, value: object) -> None:
    """Changing the schema, the counts in meta, the time or adding a field (and keeping the body
    and its digest) breaks the signature; without a key the change goes through unnoticed."""
    blob = seal(b"body", schema="driftflow.ray-partition/1", key=KEY, meta={"records": 5})
    forged = _with_header(blob, {**_header_of(blob), field: value})
    assert unseal(forged)[0][field] == value             # no key: only the digest is checked
    with pytest.raises(CheckpointError, match="signature does not match"):
        unseal(forged, key=KEY)


@pytest.mark.parametrize("key", ["", b""])
def test_an_empty_key_is_an_error(key, monkeypatch) -> None:
    with pytest.raises(CheckpointError, match="empty"):
        seal(b"x", schema="s", key=key)
    with pytest.raises(CheckpointError, match="empty"):
        unseal(seal(b"x", schema="s"), key=key)
    monkeypatch.setenv(KEY_ENV, "")
    with pytest.raises(CheckpointError, match=f"{KEY_ENV} environment variable is empty"):
        unseal(seal(b"x", schema="s", key=KEY))


@pytest.mark.parametrize("blob, message", [
    (b"", "bad magic"), (b"DFC", "bad magic"), (b"PK\x03\x04" + bytes(20), "bad magic"),
    (MAGIC + struct.pack(">I", 2**32 - 1), "claims 4,294,967,295 bytes"),
    (MAGIC + struct.pack(">I", 100) + b"{}", "truncated"),
    (_blob([]), "JSON list, not an object"), (_blob(7), "JSON int"), (_blob(None), "NoneType"),
    (_blob("text"), "JSON str"), (_blob({}), "version None"),
    (_blob({"format_version": True}), "version True"),
    (_blob({"format_version": 2.0}), "version 2.0"), (_blob({"format_version": 1}), "version 1"),
    (_blob({"format_version": FORMAT_VERSION}), "'schema' is missing"),
    (_blob({"format_version": FORMAT_VERSION, "schema": ["s"]}), "'schema' is missing or not"),
    (_blob({"format_version": FORMAT_VERSION, "schema": "s", "body_sha256": 5, "meta": {}}),
     "'body_sha256'"),
    (_blob({"format_version": FORMAT_VERSION, "schema": "s", "body_sha256": "é" * 64,
            "meta": {}}), "does not match its digest"),
    (_blob({"format_version": FORMAT_VERSION, "schema": "s", "body_sha256": "0" * 64,
            "meta": [], "hmac_sha256": None}), "'meta'"),
    (_blob({"format_version": FORMAT_VERSION, "schema": "s", "body_sha256": "0" * 64,
            "meta": {}, "hmac_sha256": "é" * 64}), "not a hex digest"),
    (MAGIC + struct.pack(">I", 4) + b"\xff\xfe\x00[", "not valid JSON"),
    (MAGIC + struct.pack(">I", 200_001) + b"[" * 200_000 + b"1", "not valid JSON"),
])
def test_malformed_headers_give_checkpoint_error(blob: bytes, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        unseal(blob, key=KEY)
    with pytest.raises(CheckpointError):
        unseal(blob)


def test_a_bit_flip_anywhere_is_refused() -> None:
    blob = seal(b"model state" * 10, schema="s/1", key=KEY, meta={"records": 7})
    for i in range(len(blob)):
        for bit in (0x01, 0x80):
            flipped = bytearray(blob)
            flipped[i] ^= bit
            try:
                header, body = unseal(bytes(flipped), key=KEY)
            except CheckpointError:
                continue
            # JSON text can change without changing its meaning (e.g. a letter's case in \\u00e9)
            assert (header, body) == unseal(blob, key=KEY), f"byte {i} bit {bit:#x} accepted"


# --- properties: only CheckpointError ever escapes, round trips hold ---------------------------

def _unseal_or_error(blob: bytes, key: bytes | None) -> None:
    try:
        header, body = unseal(blob, key=key)
    except CheckpointError as exc:
        assert "\n" not in str(exc) and str(exc).isprintable()
        return
    assert isinstance(header, dict) and isinstance(body, bytes)


@settings(PROPERTY, max_examples=3_000)
@given(blob=st.binary(max_size=300), keyed=st.booleans())
def test_arbitrary_bytes_only_raise_checkpoint_error(blob: bytes, keyed: bool) -> None:
    _unseal_or_error(blob, KEY if keyed else None)
    _unseal_or_error(MAGIC + blob, KEY if keyed else None)


_SIGNED = seal(b"\x80\x05body" * 8, schema="driftflow.ray-partition/1", key=KEY,
               meta={"topic": "t", "partition": 1, "next_offset": 12})


@settings(PROPERTY, max_examples=4_000)
@given(cuts=st.lists(st.tuples(st.integers(0, len(_SIGNED)), st.integers(0, 8),
                               st.binary(max_size=8)), min_size=1, max_size=4),
       keyed=st.booleans())
def test_mutated_checkpoints_only_raise_checkpoint_error(cuts, keyed: bool) -> None:
    """Splices (delete some bytes, insert others) anywhere in a real signed checkpoint; with the
    key, anything accepted must be the original."""
    blob = _SIGNED
    for at, drop, insert in cuts:
        blob = blob[:at] + insert + blob[at + drop:]
    _unseal_or_error(blob, KEY if keyed else None)
    if keyed and blob != _SIGNED:
        try:
            accepted = unseal(blob, key=KEY)
        except CheckpointError:
            return
        assert accepted == unseal(_SIGNED, key=KEY)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=4)
_FIELDS = ("format_version", "schema", "body_sha256", "hmac_sha256", "meta", "created_at")


@settings(PROPERTY, max_examples=2_000)
@given(header=_JSON | st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=6),
       keep=st.sets(st.sampled_from(_FIELDS)), keyed=st.booleans())
def test_headers_of_any_json_shape_only_raise_checkpoint_error(header, keep, keyed) -> None:
    """Any JSON value as the header, or a real header with some fields replaced by any JSON."""
    _unseal_or_error(_blob(header), KEY if keyed else None)
    if isinstance(header, dict):
        real = {k: v for k, v in _header_of(_SIGNED).items() if k in keep}
        _unseal_or_error(_with_header(_SIGNED, {**header, **real}), KEY if keyed else None)


@settings(PROPERTY, max_examples=1_000)
@given(body=st.binary(max_size=200), schema=st.text(max_size=20),
       meta=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5),
                            max_size=3),
       key=st.none() | st.binary(min_size=1, max_size=16) | st.text(min_size=1, max_size=16))
def test_round_trip_holds(body: bytes, schema: str, meta: dict, key) -> None:
    header, got = unseal(seal(body, schema=schema, key=key, meta=meta), key=key, schema=schema)
    assert got == body and header["meta"] == meta and header["schema"] == schema


# --- storage: a failed write leaves nothing behind ---------------------------------------------

def test_a_refused_move_leaves_no_temp_file(tmp_path) -> None:
    """The target is a directory: the temp file is written, the rename fails, the temp goes."""
    (tmp_path / "p0.ckpt" / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        write_atomic(str(tmp_path / "p0.ckpt"), b"state")
    assert sorted(os.listdir(tmp_path)) == ["p0.ckpt"]


def test_a_write_past_the_file_size_limit_leaves_no_temp_file(tmp_path) -> None:
    """A real write failure (EFBIG): a child process with RLIMIT_FSIZE of 1 KB writes 100 KB
    over an existing checkpoint, which is left as it was."""
    target = tmp_path / "p0.ckpt"
    write_atomic(str(target), b"old state")
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))\n"
        "from pipelines.checkpoints import write_atomic\n"
        "try:\n"
        f"    write_atomic({str(target)!r}, b'x' * 100_000)\n"
        "except OSError as exc:\n"
        "    print(exc.errno)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "27"                              # EFBIG: File too large
    assert os.listdir(tmp_path) == ["p0.ckpt"]
    assert read_bytes(str(target)) == b"old state"


# --- partition and labels checkpoints: JSON state plus the model's own snapshot ----------------

def _messages(n: int, seed: int) -> list[tuple[bytes, bytes | None]]:
    """SEA records as JSON messages with ids; every third label comes late, by a separate
    ``{"id", "y"}`` message four records on (None: no label message after that record)."""
    from pipelines.sources import open_source

    rows = list(open_source("synthetic:SEAa", limit=n, seed=seed))
    out: list[tuple[bytes, bytes | None]] = []
    for i, r in enumerate(rows):
        late = i % 3 == 0
        doc = {"id": i if i % 2 else f"r{i}", "x": r.x, "y": None if late else r.y}
        label = None
        if i >= 4 and (i - 4) % 3 == 0:
            j = i - 4
            label = json.dumps({"id": j if j % 2 else f"r{j}", "y": rows[j].y}).encode()
        out.append((json.dumps(doc).encode(), label))
    return out


def _feed(state, messages, start: int) -> list:
    from pipelines.host import Prediction

    got = []
    for k, (value, label) in enumerate(messages):
        result = state.host.process(state.decoder(value, start + k))
        got.append((result.y_pred, result.confidence) if isinstance(result, Prediction)
                   else result.reason)
        if label is not None:
            doc = json.loads(label)
            state.host.apply_label(doc["id"], doc["y"])
        state.next_offset = start + k + 1
    return got


def test_partition_checkpoint_restores_to_identical_predictions(monkeypatch) -> None:
    """A partition with delayed labels (ids of two types, records waiting in the joiner) is
    saved, restored and continued: the same predictions, scores and buffers as the original;
    the state is JSON (no pickle in it) and the header is signed with the configured key."""
    import pickletools

    from pipelines.checkpoints.partition import (PartitionState, load_partition,
                                                 partition_parts, save_partition)
    from pipelines.host import ModelHost
    from pipelines.labels import LabelJoiner
    from pipelines.models import make_model
    from pipelines.runners.kafka_job import KafkaJob
    from pipelines.validation import JsonDecoder

    monkeypatch.setenv(KEY_ENV, "partition-key")
    job = KafkaJob("127.0.0.1:1", "t", labels_topic="t-labels")
    messages = _messages(900, seed=3) + [(b"{not json", None), (b'{"id": 1, "x": {"a": 1e300}}',
                                                                 None)]
    state = PartitionState(ModelHost(make_model("adaptive", seed=1), joiner=LabelJoiner()),
                           JsonDecoder(require_label=False), None)
    _feed(state, messages[:600], 0)
    assert state.host.joiner.pending > 0 and state.host.metrics.n > 0
    blob = save_partition(job, 0, state)
    doc, model = partition_parts(blob)
    assert doc["next_offset"] == 600 and doc["host"]["records"] == 600
    with pytest.raises(ValueError):                      # the state is not a pickle
        list(pickletools.genops(json.dumps(doc).encode()))
    restored = load_partition(blob, "y")
    assert restored.host.joiner.to_state() == state.host.joiner.to_state()
    assert restored.host.metrics.to_state() == state.host.metrics.to_state()
    assert restored.decoder._validator.to_state() == state.decoder._validator.to_state()
    assert _feed(restored, messages[600:], 600) == _feed(state, messages[600:], 600)
    assert restored.host.metrics.to_state() == state.host.metrics.to_state()
    assert restored.host.records == state.host.records and restored.host.dead_letters >= 2
    with pytest.raises(CheckpointError, match="signature"):
        unseal(blob, key="another key")


@pytest.mark.parametrize("mangle", [
    lambda doc: doc.update(host=[]), lambda doc: doc["host"].update(metrics={"n": "x"}),
    lambda doc: doc["host"].update(joiner={"pending": 5}), lambda doc: doc.pop("validator"),
    lambda doc: doc.update(validator={"features": [["a", "weird"]], "target": "y",
                                      "target_kind": None, "require_label": True}),
])
def test_a_malformed_partition_state_is_a_checkpoint_error(mangle) -> None:
    from pipelines.checkpoints.partition import (CHECKPOINT_SCHEMA, PartitionState,
                                                 load_partition, partition_parts,
                                                 save_partition)
    from pipelines.host import ModelHost
    from pipelines.models import make_model
    from pipelines.runners.kafka_job import KafkaJob
    from pipelines.validation import JsonDecoder

    state = PartitionState(ModelHost(make_model("adaptive", seed=0)), JsonDecoder(), 3)
    state.decoder(b'{"a": 1.0, "y": 0}', 0)
    doc, model = partition_parts(save_partition(KafkaJob("127.0.0.1:1", "t"), 0, state))
    mangle(doc)
    text = json.dumps(doc).encode()
    forged = seal(struct.pack(">Q", len(text)) + text + model, schema=CHECKPOINT_SCHEMA)
    with pytest.raises(CheckpointError, match="malformed"):
        load_partition(forged, "y")


def test_labels_checkpoint_round_trip() -> None:
    from pipelines.checkpoints.partition import LabelsState, load_labels, save_labels
    from pipelines.labels import LabelJoiner

    orphans = LabelJoiner(max_size=10, ttl=60.0)
    for id, y in ((1, 0), ("a", "cat"), (2.5, 1.5), (True, False)):
        orphans.hold_orphan(id, y)
    saved = load_labels(save_labels("labels", LabelsState(orphans, {0: 7, 3: 9}, 12, 2)))
    assert saved.offsets == {0: 7, 3: 9} and (saved.read, saved.invalid) == (12, 2)
    assert saved.orphans.to_state() == orphans.to_state()
    assert [type(v) for v in (saved.orphans.take_orphan("a"), saved.orphans.take_orphan(2.5),
                              saved.orphans.take_orphan(True))] == [str, float, bool]
