"""A Ray worker's partition checkpoints: when one is due, writing each partition's state
(model, host counters, decoder schema, next offset: one sealed blob, atomically), and loading
it back, or a fresh model without one. The worker orders the steps around it (flush the
outputs, save, then commit the offsets; see its module docstring)."""
from __future__ import annotations

import time
from collections.abc import Callable

from pipelines.checkpoints import read_bytes, write_atomic
from pipelines.checkpoints.partition import (
    PartitionState,
    load_partition,
    save_partition,
)
from pipelines.host import ModelHost
from pipelines.models import make_model
from pipelines.runners.kafka_job import KafkaJob
from pipelines.validation import JsonDecoder


class PartitionCheckpoints:
    """Checkpoints of one worker's partitions under ``job.checkpoint_dir`` (none without it:
    then every start is fresh). With ``exactly_once`` the previous checkpoint is kept as
    ``p{n}.prev.ckpt``, and a restore takes the one matching the offset of the last committed
    transaction."""

    def __init__(self, job: KafkaJob) -> None:
        self.job = job
        self.last_at = time.monotonic()   # `time.monotonic()` of the last checkpoint
        self.taken = 0

    def restore(self, p: int, committed: Callable[[int, int | None], int | None]
                ) -> PartitionState:
        """Partition ``p``'s last checkpoint, or a fresh model (from the beginning) without
        one. With ``exactly_once`` it takes the checkpoint matching where the last committed
        transaction left the partition: the confirmed one when it is the newest, else
        ``committed(p, confirmed)``, Kafka's answer."""
        job = self.job
        blobs = ([read_bytes(job.checkpoint_uri(p, previous)) for previous in (False, True)]
                 if job.checkpoint_dir else [])
        states = [load_partition(b, job.target) for b in blobs if b is not None]
        if job.exactly_once and states:
            confirmed = self.confirmed(p)
            # a confirmed commit of the newest checkpoint needs no broker; otherwise its
            # transaction's outcome is Kafka's to say
            offset = (confirmed if confirmed is not None and confirmed == states[0].next_offset
                      else committed(p, confirmed))
            states = [s for s in states if s.next_offset == offset]
            if not states and offset is not None:
                raise RuntimeError(f"partition {p}: no checkpoint matches the committed offset "
                                   f"{offset} of group {job.group!r}")
        if states:
            return job.with_label_mode(states[0])
        return PartitionState(ModelHost(make_model(job.model, seed=job.seed + p),
                                         joiner=job.new_joiner(), no_labels=job.no_labels),
                               JsonDecoder(target=job.target, require_label=job.require_label),
                               None)

    def due(self, states: dict[int, PartitionState], labels_since: int) -> bool:
        """Whether a partition (or the labels feed, ``labels_since`` labels read) has
        ``checkpoint_every`` records since the last checkpoint, or ``checkpoint_seconds``
        passed with anything new."""
        every = self.job.checkpoint_every
        late = time.monotonic() - self.last_at >= self.job.checkpoint_seconds
        return (any(s.since_checkpoint >= every or (late and s.since_checkpoint)
                    for s in states.values())
                or labels_since >= every or bool(late and labels_since))

    def save(self, states: dict[int, PartitionState]) -> dict[int, int | None]:
        """Write every partition that changed (expiring its waiting records first); returns
        the offsets to commit, per partition."""
        job, offsets = self.job, {}
        for p, state in states.items():
            if state.host.joiner is not None:
                state.host.joiner.expire()   # counts expiries even when nothing arrives
            if job.checkpoint_dir and (state.since_checkpoint or state.labels_changed):
                if job.exactly_once:   # keep the state the open transaction started from
                    old = read_bytes(job.checkpoint_uri(p))
                    if old is not None:
                        write_atomic(job.checkpoint_uri(p, previous=True), old)
                write_atomic(job.checkpoint_uri(p), save_partition(job, p, state))
            state.since_checkpoint = 0
            state.labels_changed = False
            offsets[p] = state.next_offset
        return offsets

    def confirm(self, offsets: dict[int, int | None]) -> None:
        """Kafka confirmed the transaction of the checkpoint just saved: note its offsets. A
        restore then knows that outcome without asking the broker, which after a restart may
        not answer for a while (a commit it acknowledged left undecided on its partitions:
        seen here with Kafka 4.3.1, for minutes)."""
        if self.job.checkpoint_dir:
            for p, offset in offsets.items():
                if offset is not None:
                    write_atomic(self.job.confirmed_uri(p), str(offset).encode())

    def confirmed(self, p: int) -> int | None:
        """The next offset `confirm` last noted for partition ``p`` (None: none)."""
        blob = read_bytes(self.job.confirmed_uri(p)) if self.job.checkpoint_dir else None
        try:
            return int(blob) if blob is not None else None
        except ValueError:
            return None   # not ours: the broker is asked instead

    def done(self) -> None:
        """The checkpoint is complete (offsets committed too)."""
        self.last_at = time.monotonic()
        self.taken += 1
