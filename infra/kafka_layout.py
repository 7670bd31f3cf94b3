"""Where the project's Kafka broker lives: version, ports, timeouts, the jar cache (fetched from
Maven Central by ``mvn``), the state directory and what it says about a running broker.

Shared by `infra.kafka` (the broker's life cycle), `infra.kafka_tools` (console clients, topics)
and `infra.flink` (the connector jar, in the same cache under the same lock).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

KAFKA_VERSION = os.environ.get("DRIFTFLOW_KAFKA_VERSION", "4.3.1")
DEFAULT_PORT = 9092
HOST = "127.0.0.1"  # loopback only: nothing here is meant to be reachable from outside
NODE_ID = 1

MAIN_CLASS = "kafka.Kafka"  # what kafka-server-start.sh runs
STORAGE_TOOL = "kafka.tools.StorageTool"  # what kafka-storage.sh runs
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"  # kafka-console-producer.sh (4.x)
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"  # kafka-console-consumer.sh (4.x)

# A cold `mvn dependency:copy-dependencies` of ~55 MB measured 4-7 s here; 15 minutes covers a
# slow mirror on CI without letting a hung download eat the whole 90-minute CI budget.
MVN_TIMEOUT_S = 900.0
# `kafka-storage format` is one short JVM run (~2-4 s on 2 cores); 120 s only guards against a hang.
FORMAT_TIMEOUT_S = 120.0
# Cold JVM + KRaft self-election measured ~5-10 s on this 2-core machine; 180 s leaves headroom for
# CI, where Ray or Flink may be starting on the same two cores at the same time (a restart test
# once missed 90 s at a load average of 15).
START_TIMEOUT_S = float(os.environ.get("DRIFTFLOW_KAFKA_START_TIMEOUT", "180"))
# SIGTERM makes Kafka do a controlled shutdown (flush, close logs), a few seconds for one node;
# after 30 s it is stuck, and SIGKILL is safe (the log is recovered on the next start).
STOP_TIMEOUT_S = 30.0
# One readiness probe (TCP connect + metadata) must not block the wait loop for long.
PROBE_TIMEOUT_MS = 3000
# Topic creation plus leader election for a handful of partitions takes well under a second on
# one node; 30 s covers a broker that is still loading its log after a restart.
TOPIC_TIMEOUT_S = 30.0
# Lock waits: another process may be fetching jars (minutes on a cold cache) or starting the broker.
LOCK_TIMEOUT_S = MVN_TIMEOUT_S + START_TIMEOUT_S

INFRA_DIR = Path(__file__).resolve().parent
POM = INFRA_DIR / "pom.xml"


class KafkaInfraError(RuntimeError):
    """The broker or its jars could not be brought up; the message says why (with a log tail)."""


class PortInUseError(KafkaInfraError):
    """The requested port is taken by a process that is not our broker."""


# --------------------------------------------------------------------------------------------
# paths


def cache_dir() -> Path:
    """Root of the jar cache (``$DRIFTFLOW_CACHE`` or ``infra/.cache``)."""
    return Path(os.environ.get("DRIFTFLOW_CACHE") or INFRA_DIR / ".cache").resolve()


def jars_dir(version: str = KAFKA_VERSION) -> Path:
    """Directory holding the broker + tools jars of ``version``."""
    return cache_dir() / f"kafka-{version}" / "jars"


def state_dir() -> Path:
    """Directory holding the broker's data, logs, config and pid file."""
    env = os.environ.get("DRIFTFLOW_KAFKA_STATE")
    return Path(env).resolve() if env else cache_dir() / "run" / "kafka"


def _state_file() -> Path:
    return state_dir() / "state.json"


def _log_file() -> Path:
    return state_dir() / "logs" / "kafka.out"


def default_port() -> int:
    """Client port: ``$DRIFTFLOW_KAFKA_PORT`` or 9092."""
    return int(os.environ.get("DRIFTFLOW_KAFKA_PORT") or DEFAULT_PORT)


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if not java:
        raise KafkaInfraError("java not found (Kafka 4.x needs Java 17+): install a JDK or set JAVA_HOME")
    return java


@contextlib.contextmanager
def _locked(name: str, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Inter-process lock so two callers never fetch jars or start the broker at once."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "w") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise KafkaInfraError(f"timed out waiting for lock {root / f'.{name}.lock'}") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# jars

_TOOLS_LOG4J = """\
# Console tools: warnings and errors to stderr only, so stdout carries just the records.
status = error
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = STDERR
"""


def _tools_log4j(version: str = KAFKA_VERSION) -> Path:
    return jars_dir(version).parent / "tools-log4j2.properties"


def ensure_jars(version: str = KAFKA_VERSION, *, quiet: bool = True) -> Path:
    """Fetch Kafka's broker and tools jars (with runtime deps) once; return the jar directory.

    Idempotent: a complete cache (marker file ``.complete``) is reused without touching the
    network. A cold fetch runs ``mvn -B dependency:copy-dependencies`` on ``infra/pom.xml``.
    """
    target = jars_dir(version)
    marker = target / ".complete"
    if marker.exists():
        return target
    mvn = shutil.which("mvn")
    if not mvn:
        raise KafkaInfraError("mvn not found: install Maven (apt-get install maven) to fetch Kafka's jars")
    with _locked("kafka-jars"):
        if marker.exists():  # another process fetched them while we waited
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="jars-", dir=target.parent))
        cmd = [mvn, "-B", "-f", str(POM), "dependency:copy-dependencies",
               f"-Dkafka.version={version}", f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"]
        if quiet:
            cmd.insert(1, "-q")
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=MVN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            shutil.rmtree(tmp, ignore_errors=True)
            raise KafkaInfraError(f"mvn did not finish in {MVN_TIMEOUT_S:.0f} s: {' '.join(cmd)}") from None
        if proc.returncode != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            shutil.rmtree(tmp, ignore_errors=True)
            out = (proc.stdout + proc.stderr)[-4000:]
            raise KafkaInfraError(f"fetching Kafka {version} jars failed (mvn rc={proc.returncode}):\n{out}")
        elapsed = time.monotonic() - t0
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
        _tools_log4j(version).write_text(_TOOLS_LOG4J)
        marker.write_text(json.dumps({"version": version, "fetch_seconds": round(elapsed, 2),
                                      "jars": len(list(target.glob("*.jar")))}) + "\n")
        return target


def fetch_info(version: str = KAFKA_VERSION) -> dict:
    """What the last cold fetch recorded (version, seconds, jar count), or {} if not fetched."""
    marker = jars_dir(version) / ".complete"
    return json.loads(marker.read_text()) if marker.exists() else {}


def _classpath(version: str = KAFKA_VERSION) -> str:
    return str(ensure_jars(version) / "*")


# --------------------------------------------------------------------------------------------
# process state


def _read_state() -> dict:
    try:
        return json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return {}


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live (not zombie) Kafka broker JVM."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                return False
            return MAIN_CLASS in (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            return False
    return True


def is_running() -> bool:
    """True if the broker started by this module is alive."""
    return _pid_alive(int(_read_state().get("pid", 0)))


def bootstrap() -> str:
    """Bootstrap string of the running broker (or of the default port when none runs)."""
    st = _read_state()
    return st["bootstrap"] if st and is_running() else f"{HOST}:{default_port()}"


_current_bootstrap = bootstrap  # parameters named `bootstrap` shadow the function below


def log_tail(lines: int = 40) -> str:
    """Last lines of the broker's stdout/stderr and server.log (for error messages)."""
    out = []
    for path in (_log_file(), state_dir() / "logs" / "server.log"):
        if path.exists():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path} (last {len(text)} lines)\n" + "\n".join(text))
    return "\n".join(out) or f"(no broker log under {state_dir() / 'logs'})"


def _port_open(port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        return s.connect_ex((HOST, port)) == 0


def free_ports(n: int) -> list[int]:
    """``n`` distinct currently free TCP ports on 127.0.0.1 (chosen by the kernel, all bound
    at once: one at a time, the kernel may give the same port twice, and a broker whose two
    listeners share a port does not start)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                   for _ in range(n)]
        for s in sockets:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in sockets]


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (chosen by the kernel)."""
    return free_ports(1)[0]
