"""A real single-node Apache Kafka 4.x broker (KRaft), started by the project itself.

Why one module of ~800 lines: it is the broker's whole life cycle for tests, CI and users (fetch
the jars, write the config, start, wait, stop, status, console clients and its CLI), one concern
read top to bottom; its parts share the cache, state and port layout defined here. Splitting it
(fetch / config / process / CLI) is worth doing once the SASL work in it has settled.

The broker's jars come from Maven Central through ``mvn`` (see ``infra/pom.xml``) and are cached
under ``infra/.cache/`` (or ``$DRIFTFLOW_CACHE``); the broker runs detached as
``java -cp 'jars/*' kafka.Kafka server.properties`` on 127.0.0.1, with its state (data, logs, pid)
under ``<cache>/run/kafka`` (or ``$DRIFTFLOW_KAFKA_STATE``).

CLI: ``python -m infra.kafka start|stop|status|fetch`` (``driftflow infra kafka ...``).

Environment:
    DRIFTFLOW_CACHE                 cache root (default ``infra/.cache``)
    DRIFTFLOW_KAFKA_VERSION         Kafka version fetched from Maven Central (default 4.3.1)
    DRIFTFLOW_KAFKA_PORT            client (PLAINTEXT) port, default 9092
    DRIFTFLOW_KAFKA_CONTROLLER_PORT KRaft controller port, default client port + 1
    DRIFTFLOW_KAFKA_STATE           state dir (data, logs, pid file)
    DRIFTFLOW_KAFKA_HEAP            broker heap options, default ``-Xms128m -Xmx512m``
    DRIFTFLOW_KAFKA_START_TIMEOUT   seconds ``start`` waits for the broker to answer
    DRIFTFLOW_KAFKA_BROKER_PASSWORD the password of ``start --sasl-plain USER`` (given without
                                    ``:PASSWORD``, so it never shows in the process list)

SASL: ``start --sasl-plain USER:PASSWORD`` adds a SASL_PLAINTEXT listener (mechanism PLAIN) on
``--sasl-port`` (default client port + 2) that accepts that one user; ``--no-plaintext`` drops the
PLAINTEXT listener, so every client must authenticate. The KRaft controller listener stays
PLAINTEXT on loopback. The password is written to ``server.properties`` (mode 0600) in the state
dir, as the broker needs it there, and to nothing else. ``start --tls`` adds an SSL listener on
``--tls-port`` (default client port + 3) with a certificate for 127.0.0.1 signed by a self-signed
CA made for this broker (``infra/kafka_tls.py``); clients trust ``<state>/tls/ca.pem``.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.kafka_tls import TlsError, ensure_tls

__all__ = [
    "KAFKA_VERSION",
    "BrokerInfo",
    "KafkaInfraError",
    "PortInUseError",
    "SaslPlain",
    "bootstrap",
    "console_consumer_cmd",
    "console_producer_cmd",
    "create_topic",
    "ensure_jars",
    "free_port",
    "is_running",
    "log_tail",
    "main",
    "start",
    "status",
    "stop",
]

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
# Cold JVM + KRaft self-election measured ~5-10 s on this 2-core machine; 90 s leaves headroom for
# CI, where Ray or Flink may be starting on the same two cores at the same time.
START_TIMEOUT_S = float(os.environ.get("DRIFTFLOW_KAFKA_START_TIMEOUT", "90"))
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


@dataclass(frozen=True)
class BrokerInfo:
    """A running broker: where to reach it and where its files are."""

    bootstrap: str
    port: int
    controller_port: int
    pid: int
    state_dir: str
    log_file: str
    version: str
    already_running: bool = False
    start_seconds: float | None = None  # wall time of this start (None when it was already up)
    sasl_bootstrap: str | None = None   # the SASL_PLAINTEXT listener, when there is one
    tls_bootstrap: str | None = None    # the SSL listener, when there is one
    tls_ca: str | None = None           # the CA certificate its clients trust
    sasl_user: str | None = None


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
# config


def _cluster_id() -> str:
    """A Kafka cluster id: a random UUID, base64url without padding (what `random-uuid` prints)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


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


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (chosen by the kernel)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _sasl_kwargs(sasl: SaslPlain | None) -> dict[str, str]:
    """kafka-python's keywords for a SASL/PLAIN login (none without ``sasl``)."""
    if sasl is None:
        return {}
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
            "sasl_plain_username": sasl.username, "sasl_plain_password": sasl.password}


def _probe(boot: str, sasl: SaslPlain | None = None) -> bool:
    """True once the broker answers a metadata request and lists itself."""
    from kafka import (
        KafkaAdminClient,  # local import: the CLI's `status` needs no kafka-python
    )
    from kafka.errors import KafkaConfigurationError, KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=boot, client_id="driftflow-infra-probe",
                                 request_timeout_ms=PROBE_TIMEOUT_MS, **_sasl_kwargs(sasl))
    except KafkaConfigurationError:
        raise  # our bug, not a broker still starting: fail now rather than after the timeout
    except (KafkaError, OSError, ValueError):
        return False
    try:
        cluster = admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except (KafkaError, OSError, ValueError):
        return False
    finally:
        admin.close()


def _info(st: dict, *, already: bool, seconds: float | None = None) -> BrokerInfo:
    return BrokerInfo(bootstrap=st["bootstrap"], port=st["port"], controller_port=st["controller_port"],
                      pid=st["pid"], state_dir=st["state_dir"], log_file=st["log_file"],
                      version=st["version"], already_running=already, start_seconds=seconds,
                      sasl_bootstrap=st.get("sasl_bootstrap"), sasl_user=st.get("sasl_user"),
                      tls_bootstrap=st.get("tls_bootstrap"), tls_ca=st.get("tls_ca"))


# --------------------------------------------------------------------------------------------
# start / stop


def start(port: int | None = None, *, controller_port: int | None = None, wait: bool = True,
          timeout: float = START_TIMEOUT_S, fresh: bool = False,
          version: str = KAFKA_VERSION, sasl: SaslPlain | None = None,
          sasl_port: int | None = None, plaintext: bool = True, tls: bool = False,
          tls_port: int | None = None) -> BrokerInfo:
    """Start the broker detached (idempotent) and, with ``wait``, block until it answers.

    With ``sasl`` it also listens for SASL_PLAINTEXT/PLAIN on ``sasl_port`` (default port + 2),
    accepting that one user; without ``plaintext`` only there. A running broker whose listeners
    differ from the ones asked for is an error (stop it first).

    Returns the running broker's ``BrokerInfo`` (``already_running=True`` if it was up).
    With ``port=None`` a broker already running on any port is returned; an explicit ``port``
    that differs from the running broker's is an error. ``fresh`` wipes the data dir first.
    Raises ``KafkaInfraError`` (``PortInUseError`` if the port is taken) with the log tail.
    """
    requested = port
    port = port or default_port()
    cport = controller_port or int(os.environ.get("DRIFTFLOW_KAFKA_CONTROLLER_PORT") or port + 1)
    if sasl is None and not plaintext:
        raise KafkaInfraError("--no-plaintext needs --sasl-plain (a broker with no client listener)")
    sport = (sasl_port or port + 2) if sasl else None
    tport = (tls_port or port + 3) if tls else None
    with _locked("kafka-start"):
        st = _read_state()
        if st and is_running():
            if requested is not None and st["port"] != requested:
                raise KafkaInfraError(f"a driftflow broker already runs on port {st['port']} (pid "
                                      f"{st['pid']}); stop it first to start one on port {port}")
            if (sasl is not None and (st.get("sasl_user") != sasl.username
                                      or (sasl_port and st.get("sasl_port") != sasl_port))
                    or st.get("plaintext", True) != plaintext
                    or bool(st.get("tls_bootstrap")) != tls):
                raise KafkaInfraError(f"a driftflow broker already runs (pid {st['pid']}) with other "
                                      f"listeners; stop it first to change them")
            if wait:
                _wait_ready(st["bootstrap"], st["pid"], timeout, sasl if not plaintext else None)
            return _info(st, already=True)
        for p in (port, cport, *([sport] if sport else []), *([tport] if tport else [])):
            if _port_open(p):
                raise PortInUseError(f"port {HOST}:{p} is in use by another process (not a broker "
                                      f"started by infra.kafka); free it or set DRIFTFLOW_KAFKA_PORT")
        t0 = time.monotonic()
        cp = _classpath(version)
        java = _java()
        root = state_dir()
        data, logs = root / "data", root / "logs"
        # A broker formatted for other ports/version keeps stale quorum metadata: start it afresh.
        if fresh or (st and (st.get("port"), st.get("controller_port"), st.get("version"))
                     != (port, cport, version)):
            shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        props = root / "server.properties"
        props.touch(mode=0o600)   # it may hold the SASL password
        props.chmod(0o600)
        keystore = ensure_tls(root / "tls").keystore if tls else None
        props.write_text(_server_properties(port, cport, data, sasl, sport, plaintext, tport,
                                            keystore))
        log4j = root / "log4j2.properties"
        log4j.write_text(_broker_log4j(logs))
        jvm = [java, *os.environ.get("DRIFTFLOW_KAFKA_HEAP", "-Xms128m -Xmx512m").split(),
               "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={log4j}", f"-Dkafka.logs.dir={logs}", "-cp", cp]
        if not (data / "meta.properties").exists():
            _format(jvm, props, logs)
        out = _log_file()
        # `sh` backgrounds the JVM and exits at once, so the broker is re-parented to init: it
        # never lingers as our zombie, and survives the Python process that started it (the CLI).
        launcher = 'exec "$@" >>"$DF_KAFKA_OUT" 2>&1 </dev/null & echo $!'
        env = {**os.environ, "DF_KAFKA_OUT": str(out)}
        with open(out, "a") as fh:
            fh.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting Kafka {version} on {HOST}:{port}\n")
        res = subprocess.run(["sh", "-c", launcher, "sh", *jvm, MAIN_CLASS, str(props)],
                             cwd=root, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, start_new_session=True, timeout=30)
        pid = int(res.stdout.strip() or 0)
        if not pid:
            raise KafkaInfraError(f"could not launch the broker: {res.stderr.strip()}")
        sasl_boot = f"{HOST}:{sport}" if sport else None
        st = {"pid": pid, "port": port, "controller_port": cport,
              "bootstrap": f"{HOST}:{port}" if plaintext else sasl_boot, "plaintext": plaintext,
              "sasl_bootstrap": sasl_boot, "sasl_port": sport,
              "sasl_user": sasl.username if sasl else None,
              "tls_bootstrap": f"{HOST}:{tport}" if tport else None,
              "tls_ca": str(root / "tls" / "ca.pem") if tport else None,
              "version": version, "state_dir": str(root), "log_file": str(out),
              "server_log": str(logs / "server.log"), "started_at": time.time()}
        _state_file().write_text(json.dumps(st, indent=1) + "\n")
        (root / "kafka.pid").write_text(f"{pid}\n")
        if wait:
            try:
                _wait_ready(st["bootstrap"], pid, timeout, sasl if not plaintext else None)
            except KafkaInfraError:
                _kill(pid)
                raise
        return _info(st, already=False, seconds=round(time.monotonic() - t0, 2))


def _format(jvm: list[str], props: Path, logs: Path) -> None:
    """Format the KRaft log dir with a fresh cluster id (what `kafka-storage.sh format` does)."""
    cmd = [*jvm, STORAGE_TOOL, "format", "-t", _cluster_id(), "-c", str(props), "--ignore-formatted"]
    try:
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=FORMAT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise KafkaInfraError(f"kafka-storage format hung for {FORMAT_TIMEOUT_S:.0f} s") from None
    (logs / "format.out").write_text(res.stdout + res.stderr)
    if res.returncode != 0:
        raise KafkaInfraError(f"kafka-storage format failed (rc={res.returncode}):\n{res.stdout}{res.stderr}")


def _wait_ready(boot: str, pid: int, timeout: float, sasl: SaslPlain | None = None) -> None:
    deadline = time.monotonic() + timeout
    port = int(boot.rsplit(":", 1)[1])
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            raise KafkaInfraError(f"the broker (pid {pid}) exited during startup:\n{log_tail()}")
        if _port_open(port) and _probe(boot, sasl):
            return
        time.sleep(0.5)
    raise KafkaInfraError(f"the broker did not answer on {boot} within {timeout:.0f} s:\n{log_tail()}")


def _kill(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the broker's process group, SIGKILL it after ``timeout``."""
    for sig, wait_s in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(os.getpgid(pid), sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return
            time.sleep(0.2)
    if _pid_alive(pid):
        raise KafkaInfraError(f"the broker (pid {pid}) survived SIGKILL")


def stop(timeout: float = STOP_TIMEOUT_S) -> bool:
    """Stop the broker (SIGTERM, then SIGKILL after ``timeout``). True if one was running."""
    with _locked("kafka-start"):
        st = _read_state()
        pid = int(st.get("pid", 0))
        was = _pid_alive(pid)
        if was:
            _kill(pid, timeout)
        with contextlib.suppress(FileNotFoundError):
            (state_dir() / "kafka.pid").unlink()
        if st:
            st["pid"] = 0
            _state_file().write_text(json.dumps(st, indent=1) + "\n")
        return was


def status() -> dict:
    """Running?, pid, port, bootstrap, state dir, log file, version."""
    st = _read_state()
    running = is_running()
    return {"running": running, "pid": st.get("pid") if running else None,
            "port": st.get("port", default_port()), "controller_port": st.get("controller_port"),
            "bootstrap": st.get("bootstrap", f"{HOST}:{default_port()}"),
            "version": st.get("version", KAFKA_VERSION), "state_dir": str(state_dir()),
            "sasl_bootstrap": st.get("sasl_bootstrap"), "sasl_user": st.get("sasl_user"),
            "tls_bootstrap": st.get("tls_bootstrap"), "tls_ca": st.get("tls_ca"),
            "log_file": st.get("log_file", str(_log_file())), "server_log": st.get("server_log"),
            "jars": str(jars_dir(st.get("version", KAFKA_VERSION)))}


# --------------------------------------------------------------------------------------------
# tools


def _tool_cmd(main_class: str, version: str) -> list[str]:
    cp = _classpath(version)
    return [_java(), "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
            f"-Dlog4j2.configurationFile={_tools_log4j(version)}", "-cp", cp, main_class]


def console_producer_cmd(topic: str, bootstrap: str | None = None, *, extra: Sequence[str] = (),
                         version: str = KAFKA_VERSION) -> list[str]:
    """Command line of Kafka's own console producer (one record per stdin line)."""
    return [*_tool_cmd(CONSOLE_PRODUCER, version), "--bootstrap-server", bootstrap or _current_bootstrap(),
            "--topic", topic, *extra]


def console_consumer_cmd(topic: str, bootstrap: str | None = None, *, from_beginning: bool = True,
                         max_messages: int | None = None, timeout_ms: int | None = None,
                         extra: Sequence[str] = (), version: str = KAFKA_VERSION) -> list[str]:
    """Command line of Kafka's own console consumer (one record per stdout line)."""
    cmd = [*_tool_cmd(CONSOLE_CONSUMER, version), "--bootstrap-server",
           bootstrap or _current_bootstrap(), "--topic", topic]
    if from_beginning:
        cmd.append("--from-beginning")
    if max_messages is not None:
        cmd += ["--max-messages", str(max_messages)]
    if timeout_ms is not None:
        cmd += ["--timeout-ms", str(timeout_ms)]
    return [*cmd, *extra]


def create_topic(name: str, partitions: int = 1, *, replication_factor: int = 1,
                 bootstrap: str | None = None, configs: dict[str, str] | None = None,
                 exist_ok: bool = True, timeout: float = TOPIC_TIMEOUT_S,
                 client: dict[str, Any] | None = None) -> None:
    """Create a topic via kafka-python's admin client and wait until every partition has a leader.
    ``client``: more kafka-python keywords (a secured cluster's settings)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    boot = bootstrap or _current_bootstrap()
    admin = KafkaAdminClient(bootstrap_servers=boot, client_id="driftflow-infra",
                             request_timeout_ms=int(timeout * 1000), **(client or {}))
    try:
        try:
            admin.create_topics([NewTopic(name, partitions, replication_factor,
                                          topic_configs=dict(configs or {}))],
                                timeout_ms=int(timeout * 1000))
        except TopicAlreadyExistsError:
            if not exist_ok:
                raise
        deadline = time.monotonic() + timeout
        while True:
            topics = admin.describe_topics([name])
            parts = topics[0].get("partitions") or [] if topics else []
            if (topics and topics[0].get("error_code", 0) == 0 and parts
                    and all(p.get("leader_id", p.get("leader", -1)) >= 0 for p in parts)):
                return
            if time.monotonic() > deadline:
                raise KafkaInfraError(f"topic {name!r} has no leader for every partition after {timeout:.0f} s")
            time.sleep(0.1)
    finally:
        admin.close()


# --------------------------------------------------------------------------------------------
# CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``start|stop|status|fetch``; 0 on success (``status``: 0 running, 3 not running)."""
    p = argparse.ArgumentParser(prog="driftflow infra kafka", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start the broker (no-op if it runs)")
    s.add_argument("--port", type=int, default=None, help=f"client port (default {default_port()})")
    s.add_argument("--controller-port", type=int, default=None, help="KRaft controller port (port+1)")
    s.add_argument("--no-wait", action="store_true", help="return without waiting for readiness")
    s.add_argument("--fresh", action="store_true", help="wipe the broker's data first")
    s.add_argument("--timeout", type=float, default=START_TIMEOUT_S, help="readiness wait, seconds")
    s.add_argument("--sasl-plain", metavar="USER[:PASSWORD]", default=None, help=(
        "also listen for SASL_PLAINTEXT/PLAIN, accepting this user (password from "
        "DRIFTFLOW_KAFKA_BROKER_PASSWORD when not given here)"))
    s.add_argument("--sasl-port", type=int, default=None, help="SASL listener port (port+2)")
    s.add_argument("--tls", action="store_true", help=(
        "also listen for SSL with a certificate signed by a self-signed CA made for this broker "
        "(clients trust <state>/tls/ca.pem)"))
    s.add_argument("--tls-port", type=int, default=None, help="SSL listener port (port+3)")
    s.add_argument("--no-plaintext", action="store_true",
                   help="no PLAINTEXT listener: every client authenticates (with --sasl-plain)")
    sub.add_parser("stop", help="stop the broker")
    st = sub.add_parser("status", help="is it running? port, pid, log dir")
    st.add_argument("--json", action="store_true")
    sub.add_parser("fetch", help="fetch the jars from Maven Central only")
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))

    try:
        if args.cmd == "start":
            sasl = SaslPlain.parse(args.sasl_plain) if args.sasl_plain else None
            info = start(args.port, controller_port=args.controller_port, wait=not args.no_wait,
                         timeout=args.timeout, fresh=args.fresh, sasl=sasl,
                         sasl_port=args.sasl_port, plaintext=not args.no_plaintext,
                         tls=args.tls, tls_port=args.tls_port)
            if info.already_running:
                print(f"kafka already running at {info.bootstrap} (pid {info.pid})")
            else:
                print(f"kafka {info.version} started at {info.bootstrap} (pid {info.pid}) in "
                      f"{info.start_seconds:.1f} s; logs: {info.log_file}")
            if info.tls_bootstrap:
                print(f"SSL listener at {info.tls_bootstrap}; clients trust {info.tls_ca}")
            if info.sasl_bootstrap:
                print(f"SASL_PLAINTEXT/PLAIN listener at {info.sasl_bootstrap} for user "
                      f"{info.sasl_user!r}")
            return 0
        if args.cmd == "stop":
            print("kafka stopped" if stop() else "kafka was not running")
            return 0
        if args.cmd == "status":
            info = status()
            if args.json:
                print(json.dumps(info, indent=1))
            else:
                state = f"running (pid {info['pid']})" if info["running"] else "not running"
                print(f"kafka {state} at {info['bootstrap']}\n  state: {info['state_dir']}\n"
                      f"  log:   {info['log_file']}")
            return 0 if info["running"] else 3
        if args.cmd == "fetch":
            t0 = time.monotonic()
            path = ensure_jars(quiet=False)
            print(f"kafka {KAFKA_VERSION} jars in {path} ({time.monotonic() - t0:.1f} s; "
                  f"cold fetch: {fetch_info().get('fetch_seconds')} s)")
            return 0
    except (KafkaInfraError, TlsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
