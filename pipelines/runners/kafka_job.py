"""The runtime-neutral description of a Kafka job: input and output topics, model, seed,
checkpointing and delayed labels. The Ray runner and the Flink runner read the same settings, so
topic names and checkpoint locations are the same whichever runtime runs the job."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipelines.labels import DEFAULT_MAX_SIZE, DEFAULT_TTL_S, LabelJoiner
from pipelines.runners.kafka_config import NO_CONFIG, KafkaClientConfig

if TYPE_CHECKING:
    from pipelines.checkpoints.partition import PartitionState


@dataclass(frozen=True)
class KafkaJob:
    """Settings of one Kafka job; every worker gets the same copy.

    ``checkpoint_every`` is in records per partition, ``checkpoint_seconds`` in seconds (a
    checkpoint is taken when either is reached); ``checkpoint_dir`` None disables checkpoints
    (a restarted worker then starts its partitions again from the beginning).
    ``client_config`` holds the Kafka client settings of a secured cluster (SASL, TLS); every
    client of the job takes them (`client_config.confluent()`, `client_config.kafka_python()`); the dataclass
    repr shows its secrets as ``***``. ``kafka_timeout`` (seconds) bounds the wait for an
    unreachable broker at start (None: 30 s, but nothing listening is said at once; see
    `kafka_connect.wait_for_broker`).
    """

    bootstrap: str
    topic: str
    model: str = "adaptive"
    seed: int = 0
    target: str = "y"
    group_id: str | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int = 1000
    checkpoint_seconds: float = 30.0
    output_prefix: str | None = None
    exactly_once: bool = False
    labels_topic: str | None = None
    label_buffer: int = DEFAULT_MAX_SIZE
    label_ttl: float = DEFAULT_TTL_S
    no_labels: bool = False   # the stream has no labels: predict and watch the inputs only
    client_config: KafkaClientConfig = NO_CONFIG
    kafka_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.exactly_once and not self.checkpoint_dir:
            raise ValueError("exactly-once output needs a checkpoint directory")
        if self.exactly_once and self.labels_topic:
            raise ValueError("--labels-topic is at-least-once only (not with --exactly-once)")
        if self.no_labels and self.labels_topic:
            raise ValueError("--no-labels and --labels-topic exclude each other")
        if self.label_buffer < 1 or self.label_ttl <= 0:
            raise ValueError("--label-buffer must be >= 1 and --label-ttl > 0")
        if self.kafka_timeout is not None and self.kafka_timeout <= 0:
            raise ValueError("--kafka-timeout must be > 0 seconds")

    @property
    def require_label(self) -> bool:
        """Whether a record without a label is a dead letter (not with delayed or no labels)."""
        return not (self.labels_topic or self.no_labels)

    def with_label_mode(self, state: PartitionState) -> PartitionState:
        """A restored `PartitionState` set to this job's label mode (``no_labels``, whether a
        label is required), which its checkpoint does not decide."""
        state.host.no_labels = self.no_labels
        state.decoder.require_label = self.require_label
        return state

    def new_joiner(self) -> LabelJoiner | None:
        return (LabelJoiner(self.label_buffer, self.label_ttl) if self.labels_topic else None)

    @property
    def group(self) -> str:
        return self.group_id or f"driftflow-{self.topic}"

    def output_topic(self, kind: str) -> str:
        """``<prefix>.predictions``, ``.drift``, ``.dead-letter`` or, with ``exactly_once``, the
        Ray runner's ``.commits`` (`pipelines.runners.kafka_commits`); prefix: the input topic."""
        return f"{self.output_prefix or self.topic}.{kind}"

    def checkpoint_uri(self, partition: int, previous: bool = False) -> str:
        assert self.checkpoint_dir is not None
        suffix = ".prev.ckpt" if previous else ".ckpt"
        return f"{self.checkpoint_dir.rstrip('/')}/{self.topic}/p{partition}{suffix}"

    def confirmed_uri(self, partition: int) -> str:
        """With ``exactly_once``: the next offset of the last checkpoint whose transaction
        Kafka confirmed committed (`PartitionCheckpoints.confirm`)."""
        assert self.checkpoint_dir is not None
        return f"{self.checkpoint_dir.rstrip('/')}/{self.topic}/p{partition}.committed"

    def labels_checkpoint_uri(self, partitions: list[int]) -> str:
        """A worker's orphan labels and labels-topic offsets (the worker's partition group)."""
        assert self.checkpoint_dir is not None
        group = "-".join(map(str, sorted(partitions)))
        return f"{self.checkpoint_dir.rstrip('/')}/{self.topic}/labels-p{group}.ckpt"
