"""What a Ray worker produces, and to which topic: predictions and dead letters keyed and
partitioned as their input message, drift events after the record that caused them. The topic
names are resolved once (this runs once per record)."""
from __future__ import annotations

from typing import Any

from pipelines.host import Prediction
from pipelines.records import DeadLetter
from pipelines.runners import kafka_io as kio
from pipelines.runners.kafka_job import KafkaJob
from pipelines.sinks import kafka_messages as formats


class OutputSender:
    """Sends a worker's outputs through its producer (``io``) in the Ray runner's formats."""

    def __init__(self, job: KafkaJob, io: kio.PartitionIO) -> None:
        self._io = io
        self._input_topic = job.topic
        self._predictions = job.output_topic("predictions")
        self._dead_letters = job.output_topic("dead-letter")
        self._drift = job.output_topic("drift")

    def results(self, partition: int, messages: list[Any],
                results: list[Prediction | DeadLetter], events: list[dict[str, Any]]) -> None:
        """Each message's prediction or dead letter, then the drift events its record caused
        (``events`` in offset order): the order record-at-a-time processing sends them in."""
        send, e = self._io.send, 0
        for m, result in zip(messages, results):
            if isinstance(result, Prediction):
                send(self._predictions, key=m.key(), partition=partition,
                     value=formats.prediction_message(result))
            else:
                send(self._dead_letters, key=m.key(), partition=partition,
                     value=formats.dead_letter_message(result, self._input_topic))
            while e < len(events) and events[e]["offset"] <= m.offset():
                self.event(partition, events[e])
                e += 1

    def dead_letter(self, dead: DeadLetter, source_topic: str | None = None) -> None:
        """A dead letter not tied to an input message's key (a label the model cannot use, an
        invalid label message: ``source_topic`` the labels topic)."""
        self._io.send(self._dead_letters,
                      value=formats.dead_letter_message(dead, source_topic or self._input_topic))

    def event(self, partition: int, event: dict[str, Any]) -> None:
        self._io.send(self._drift, partition=partition,
                      value=formats.event_message(event, self._input_topic))
