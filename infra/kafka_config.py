"""The broker's configuration: ``server.properties`` (KRaft, listeners: PLAINTEXT, optional
SASL_PLAINTEXT/PLAIN and SSL), its log4j file, and the one SASL/PLAIN user."""
from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from infra.kafka_layout import HOST, NODE_ID, KafkaInfraError


@dataclass(frozen=True)
class SaslPlain:
    """The one user of a SASL/PLAIN listener; the password stays out of the repr."""

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        for what, value in (("user", self.username), ("password", self.password)):
            if not value or any(c in value for c in '"\\;\n\r') or value != value.strip():
                raise KafkaInfraError(f"--sasl-plain: the {what} must be non-empty, without quotes, "
                                      f"backslashes, semicolons, newlines or surrounding spaces")

    @classmethod
    def parse(cls, text: str) -> SaslPlain:
        """``USER:PASSWORD``, or ``USER`` with the password in $DRIFTFLOW_KAFKA_BROKER_PASSWORD."""
        user, sep, password = text.partition(":")
        if not sep:
            password = os.environ.get("DRIFTFLOW_KAFKA_BROKER_PASSWORD", "")
            if not password:
                raise KafkaInfraError("--sasl-plain USER needs DRIFTFLOW_KAFKA_BROKER_PASSWORD "
                                      "(or give USER:PASSWORD)")
        return cls(user, password)

    def jaas(self) -> str:
        """The listener's JAAS line: the broker's own login and the one user it accepts."""
        return ("org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="{self.username}" password="{self.password}" '
                f'user_{self.username}="{self.password}";')


# --------------------------------------------------------------------------------------------
# config


def _cluster_id() -> str:
    """A Kafka cluster id: a random UUID, base64url without padding (what `random-uuid` prints).

    Never one that starts with "-" (1 in 32 would): the storage tool's argument parser takes it
    for an option and the broker does not start. Kafka's own `Uuid.randomUuid` redraws too."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _listeners(port: int, cport: int, sasl: SaslPlain | None, sasl_port: int | None,
               plaintext: bool, tls_port: int | None = None,
               keystore: Path | None = None) -> list[str]:
    """The listener lines: PLAINTEXT (unless not ``plaintext``), SASL_PLAINTEXT/PLAIN with
    ``sasl``, SSL with ``keystore`` (a PEM key and chain), and the controller's (PLAINTEXT,
    loopback)."""
    client = ([f"PLAINTEXT://{HOST}:{port}"] if plaintext else []) + (
        [f"SASL_PLAINTEXT://{HOST}:{sasl_port}"] if sasl else []) + (
        [f"SSL://{HOST}:{tls_port}"] if keystore else [])
    lines = [f"listeners={','.join([*client, f'CONTROLLER://{HOST}:{cport}'])}",
             f"advertised.listeners={','.join(client)}",
             ("listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,"
              "SSL:SSL,CONTROLLER:PLAINTEXT"),
             f"inter.broker.listener.name={'PLAINTEXT' if plaintext else 'SASL_PLAINTEXT'}"]
    if sasl:
        lines += ["sasl.enabled.mechanisms=PLAIN", "sasl.mechanism.inter.broker.protocol=PLAIN",
                  f"listener.name.sasl_plaintext.plain.sasl.jaas.config={sasl.jaas()}"]
    if keystore:
        lines += ["listener.name.ssl.ssl.keystore.type=PEM",
                  f"listener.name.ssl.ssl.keystore.location={keystore}"]
    return lines


def _server_properties(port: int, cport: int, data: Path, sasl: SaslPlain | None = None,
                       sasl_port: int | None = None, plaintext: bool = True,
                       tls_port: int | None = None, keystore: Path | None = None) -> str:
    return "\n".join([
        "# written by infra/kafka.py: single-node KRaft broker+controller on loopback",
        "process.roles=broker,controller",
        f"node.id={NODE_ID}",
        f"controller.quorum.voters={NODE_ID}@{HOST}:{cport}",
        *_listeners(port, cport, sasl, sasl_port, plaintext, tls_port, keystore),
        "controller.listener.names=CONTROLLER",
        f"log.dirs={data}",
        "num.partitions=1",
        "default.replication.factor=1",
        "auto.create.topics.enable=true",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=4",  # 50 by default: slow to create on a small machine
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=4",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "num.network.threads=2",
        "num.io.threads=4",
        "log.retention.hours=24",
        "",
    ])


def _broker_log4j(logs: Path) -> str:
    return f"""\
# written by infra/kafka.py: broker logs to files under {logs}
status = error
appender.server.type = RollingFile
appender.server.name = SERVER
appender.server.fileName = {logs}/server.log
appender.server.filePattern = {logs}/server.log.%i
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
appender.server.policies.type = Policies
appender.server.policies.size.type = SizeBasedTriggeringPolicy
appender.server.policies.size.size = 20MB
appender.server.strategy.type = DefaultRolloverStrategy
appender.server.strategy.max = 3
rootLogger.level = info
rootLogger.appenderRef.server.ref = SERVER
logger.kafka.name = kafka
logger.kafka.level = info
logger.apache.name = org.apache.kafka
logger.apache.level = info
"""



def _sasl_kwargs(sasl: SaslPlain | None) -> dict[str, str]:
    """kafka-python's keywords for a SASL/PLAIN login (none without ``sasl``)."""
    if sasl is None:
        return {}
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
            "sasl_plain_username": sasl.username, "sasl_plain_password": sasl.password}
