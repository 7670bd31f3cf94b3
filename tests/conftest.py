"""Shared pytest fixtures. Kafka is never mocked: integration tests get a real broker."""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.support import in_ci, unavailable

# Shared, noisy 2-core machines: a property example that takes longer than hypothesis's 200 ms
# default deadline is load, not a failure; the properties are about behaviour, not speed.
settings.register_profile("driftflow", deadline=None)
settings.load_profile("driftflow")


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
            port, controller_port = infra_kafka.free_ports(2)
            info = infra_kafka.start(port=port, controller_port=controller_port)
    except Exception as exc:  # noqa: BLE001 - any failure to start decides fail vs skip
        msg = f"could not start the Kafka broker: {exc}"
        unavailable(f"{msg}\n{infra_kafka.log_tail()}" if in_ci() else msg)
    try:
        yield info.bootstrap
    finally:
        if not info.already_running and os.environ.get("DRIFTFLOW_KAFKA_KEEP", "") in ("", "0"):
            infra_kafka.stop()


class PrivateBroker:
    """A broker of one test session's own (own ports, own state dir, PLAINTEXT plus a
    SASL_PLAINTEXT/PLAIN listener for one user and an SSL listener whose CA is ``tls_ca``),
    started through the ``infra.kafka`` CLI so tests may stop and start it without touching the
    shared broker other tests use."""

    USER = "driftflow-test"

    def __init__(self, state_dir: str) -> None:
        import secrets

        from infra import kafka as infra_kafka

        self.password = secrets.token_urlsafe(18)
        self.port, self.controller_port, self.sasl_port, self.tls_port = (
            infra_kafka.free_ports(4))
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.sasl_bootstrap = f"127.0.0.1:{self.sasl_port}"
        self.tls_bootstrap = f"127.0.0.1:{self.tls_port}"
        self.tls_ca = os.path.join(state_dir, "tls", "ca.pem")
        # the password reaches the broker through the environment, never its command line
        self.env = {**os.environ, "DRIFTFLOW_KAFKA_STATE": state_dir,
                    "DRIFTFLOW_KAFKA_BROKER_PASSWORD": self.password}

    def _cli(self, *args: str) -> None:
        import subprocess
        import sys

        proc = subprocess.run([sys.executable, "-m", "infra.kafka", *args], env=self.env,
                              capture_output=True, text=True, timeout=180, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"infra.kafka {args[0]} failed: {proc.stderr[-2000:]}")

    def start(self) -> None:
        self._cli("start", "--port", str(self.port), "--controller-port",
                  str(self.controller_port), "--sasl-plain", self.USER, "--sasl-port",
                  str(self.sasl_port), "--tls", "--tls-port", str(self.tls_port))

    def stop(self) -> None:
        self._cli("stop")


@pytest.fixture(scope="session")
def private_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    """A `PrivateBroker`, started once per session; fails under CI when it cannot start."""
    broker = PrivateBroker(str(tmp_path_factory.mktemp("private-kafka")))
    try:
        broker.start()
    except Exception as exc:  # noqa: BLE001 - any failure to start decides fail vs skip
        unavailable(f"could not start a private broker: {exc}")
    try:
        yield broker
    finally:
        broker.stop()
