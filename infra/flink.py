"""Flink's Kafka connector jar, fetched from Maven Central into the broker's jar cache.

PyFlink's KafkaSource / KafkaSink are thin wrappers: the Java classes come from the fat
``org.apache.flink:flink-sql-connector-kafka`` jar (everything shaded in; the thin
``flink-connector-kafka`` pulls a schema-registry jar Maven Central lacks). The jar is copied by
``mvn dependency:copy`` to ``<cache>/flink-connector-kafka-<version>/`` beside the broker's
``kafka-<version>/`` (``<cache>`` is ``infra/.cache`` or ``$DRIFTFLOW_CACHE``).

CLI: ``python -m infra.flink fetch`` (prints the jar's path).

Environment:
    DRIFTFLOW_FLINK_KAFKA_CONNECTOR  connector version (default 5.0.0-2.2: the newest, built
                                     for Flink 2.1/2.2; the integration tests run it on 2.3)
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from infra.kafka_layout import MVN_TIMEOUT_S, _locked, cache_dir

__all__ = ["CONNECTOR_VERSION", "FlinkInfraError", "connector_jar", "ensure_connector", "main"]

CONNECTOR_VERSION = os.environ.get("DRIFTFLOW_FLINK_KAFKA_CONNECTOR", "5.0.0-2.2")
ARTIFACT = "org.apache.flink:flink-sql-connector-kafka"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


class FlinkInfraError(RuntimeError):
    """The connector jar could not be fetched; the message says why."""


def connector_jar(version: str = CONNECTOR_VERSION) -> Path:
    """Where the connector jar of ``version`` lives in the cache (fetched or not)."""
    return (cache_dir() / f"flink-connector-kafka-{version}"
            / f"flink-sql-connector-kafka-{version}.jar")


def ensure_connector(version: str = CONNECTOR_VERSION, *, quiet: bool = True) -> Path:
    """The connector jar's path, fetched once (``mvn dependency:copy``); idempotent, and a
    cached jar is used without touching the network."""
    jar = connector_jar(version)
    if jar.exists():
        return jar
    mvn = shutil.which("mvn")
    if not mvn:
        raise FlinkInfraError("mvn not found: install Maven to fetch Flink's Kafka connector jar")
    with _locked("flink-jars"):
        if jar.exists():
            return jar
        jar.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="jar-", dir=jar.parent))
        cmd = [mvn, "-B", f"{DEPENDENCY_PLUGIN}:copy", f"-Dartifact={ARTIFACT}:{version}",
               f"-DoutputDirectory={tmp}"]
        if quiet:
            cmd.insert(1, "-q")
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=MVN_TIMEOUT_S, cwd=tmp)
        except subprocess.TimeoutExpired:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FlinkInfraError(f"mvn did not finish in {MVN_TIMEOUT_S:.0f} s") from None
        fetched = tmp / jar.name
        if proc.returncode != 0 or not fetched.exists():
            shutil.rmtree(tmp, ignore_errors=True)
            raise FlinkInfraError(f"fetching {ARTIFACT}:{version} failed (mvn rc="
                                  f"{proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
        fetched.rename(jar)   # one rename: a reader never sees half a jar
        shutil.rmtree(tmp, ignore_errors=True)
        return jar


def main(argv: Sequence[str] | None = None) -> int:
    """``fetch``: fetch the connector jar and print its path; 0 on success, 1 on failure."""
    parser = argparse.ArgumentParser(prog="python -m infra.flink", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="cmd", required=True)
    commands.add_parser("fetch", help="fetch the Kafka connector jar from Maven Central")
    parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    t0 = time.monotonic()
    try:
        jar = ensure_connector(quiet=False)
    except FlinkInfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{jar} ({jar.stat().st_size / 1e6:.1f} MB, {time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
