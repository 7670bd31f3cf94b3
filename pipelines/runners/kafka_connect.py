"""Reaching a Kafka cluster: every confluent-kafka client's base settings (security settings,
librdkafka's logs kept out of sight), the wait for a broker at start, and the bounds of waiting
for one that is away. Kept apart from `kafka_io` (the clients themselves) to keep both short.

librdkafka's own log lines (one per failed connection attempt, many a second while a broker is
away) go to the ``driftflow.kafka.client`` logger at DEBUG; what a person needs to know (broker
away, back, refused credentials) is said once, in one line, by the callers."""
from __future__ import annotations

import logging
import time
from typing import Any

from pipelines.runners.kafka_config import (
    NO_CONFIG,
    KafkaClientConfig,
    KafkaUnavailable,
    redact,
)

# How long the job waits for an unreachable broker at start before it gives up (--kafka-timeout):
# a broker being restarted is back within seconds to a minute; a wrong address never answers.
CONNECT_TIMEOUT_S = 30.0
# One metadata probe while waiting: short, so the wait notices a broker soon after it is back.
PROBE_TIMEOUT_S = 1.0
# A running job waits this long for a lost broker before its worker gives up: a restarted broker
# is back in under a minute; librdkafka itself fails queued output messages after 300 s
# (message.timeout.ms), which the checkpoint then redoes from the last checkpoint.
OUTAGE_TIMEOUT_S = 600.0
# librdkafka errors that mean the settings, not the network, are wrong: waiting cannot help.
_REFUSED = {"_AUTHENTICATION", "_SSL", "SASL_AUTHENTICATION_FAILED", "_INVALID_ARG",
            "TOPIC_AUTHORIZATION_FAILED", "GROUP_AUTHORIZATION_FAILED",
            "CLUSTER_AUTHORIZATION_FAILED"}

log = logging.getLogger("driftflow")


class _ClientLog:
    """librdkafka's log callback target: every line at DEBUG on ``driftflow.kafka.client``."""

    _logger = logging.getLogger("driftflow.kafka.client")

    def log(self, level: int, msg: str, *args: Any) -> None:
        self._logger.debug(msg, *args)


CLIENT_LOG = _ClientLog()


def confluent_settings(bootstrap: str, config: KafkaClientConfig,
                       error_cb: Any = None) -> dict[str, Any]:
    """A confluent-kafka client's settings: the bootstrap, the security settings of ``config``,
    librdkafka's logs to DEBUG and its client-level errors to ``error_cb``."""
    settings = {"bootstrap.servers": bootstrap, **config.confluent(), "logger": CLIENT_LOG}
    return {**settings, "error_cb": error_cb} if error_cb is not None else settings


def wait_for_broker(bootstrap: str, config: KafkaClientConfig = NO_CONFIG,
                    timeout_s: float | None = None) -> None:
    """Return once the broker answers a metadata request; while it does not, log one line and
    keep asking up to ``timeout_s``. Raises `KafkaUnavailable` (one line) at once when the
    broker refuses the credentials or TLS settings, or when ``timeout_s`` passes.

    ``timeout_s`` None: wait up to `CONNECT_TIMEOUT_S` for a broker that does not answer, but
    when nothing listens at the address (connection refused) say so at once: a newcomer who
    forgot to start the broker gets one line, not a wait. Give a timeout to wait regardless
    (a broker being restarted refuses connections too)."""
    import confluent_kafka as ck
    from confluent_kafka.admin import AdminClient

    errors: list[Any] = []
    admin = AdminClient(confluent_settings(bootstrap, config, error_cb=errors.append))
    refused_fast, timeout_s = timeout_s is None, timeout_s or CONNECT_TIMEOUT_S
    deadline, waiting = time.monotonic() + timeout_s, False
    while True:
        try:
            admin.list_topics(timeout=min(PROBE_TIMEOUT_S, max(0.1, deadline - time.monotonic())))
            if waiting:
                log.info("driftflow: Kafka at %s answers; starting", bootstrap)
            return
        except ck.KafkaException as exc:
            errors.append(exc.args[0])
        admin.poll(0)
        refused = [e for e in errors if e.name() in _REFUSED]
        if refused:
            raise KafkaUnavailable(f"Kafka at {bootstrap} refused the client: "
                                   f"{_reason(refused[-1], config)}")
        if refused_fast and any("Connection refused" in _reason(e, config) for e in errors):
            raise KafkaUnavailable(f"no Kafka broker at {bootstrap} (connection refused); start "
                                   f"one (driftflow infra kafka start), or give --kafka-timeout "
                                   f"SECONDS to wait for it")
        if time.monotonic() >= deadline:
            raise KafkaUnavailable(f"Kafka at {bootstrap} did not answer within {timeout_s:g} s "
                                   f"({_reason(errors[-1], config)}); is the broker running? "
                                   f"(--kafka-timeout sets the wait)")
        if not waiting:
            log.warning("driftflow: waiting up to %g s for Kafka at %s (%s)", timeout_s,
                        bootstrap, _reason(errors[-1], config))
            waiting = True


def _reason(error: Any, config: KafkaClientConfig) -> str:
    """A librdkafka error as a short phrase: its text after the broker's address, no secret."""
    text = error.str() if hasattr(error, "str") else str(error)
    return redact(text.split("/bootstrap: ", 1)[-1].split(" (after ")[0], config)
