"""Shared pytest fixtures. Kafka is never mocked: integration tests get a real broker."""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

# Shared, noisy 2-core machines: a property example that takes longer than hypothesis's 200 ms
# default deadline is load, not a failure; the properties are about behaviour, not speed.
settings.register_profile("driftflow", deadline=None)
settings.load_profile("driftflow")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[str]:
    """Bootstrap string of a real Kafka broker, started once per session if none runs.

    ``DRIFTFLOW_KAFKA_BOOTSTRAP`` points at an external broker (e.g. docker compose) instead.
    A broker this fixture started is stopped at session end unless ``DRIFTFLOW_KAFKA_KEEP=1``.
    If the default port is taken by another process, the broker starts on free ports (so
    tests must use the yielded bootstrap, never assume 9092). If it cannot start: under ``CI=true`` the test fails with the broker log tail; elsewhere it
    is skipped with the reason.
    """
    external = os.environ.get("DRIFTFLOW_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    from infra import kafka as infra_kafka

    try:
        try:
            info = infra_kafka.start()
        except infra_kafka.PortInUseError:
            if os.environ.get("DRIFTFLOW_KAFKA_PORT"):
                raise  # an explicit port is a promise: do not silently move
            # Something else (e.g. a broker left by another checkout) holds 9092: use free ports.
            info = infra_kafka.start(port=infra_kafka.free_port(),
                                     controller_port=infra_kafka.free_port())
    except Exception as exc:  # noqa: BLE001 - any failure to start decides fail vs skip
        msg = f"could not start the Kafka broker: {exc}"
        if _in_ci():
            pytest.fail(f"{msg}\n{infra_kafka.log_tail()}", pytrace=False)
        pytest.skip(msg)
    try:
        yield info.bootstrap
    finally:
        if not info.already_running and os.environ.get("DRIFTFLOW_KAFKA_KEEP", "") in ("", "0"):
            infra_kafka.stop()
