"""A real single-node Apache Kafka 4.x broker (KRaft), started by the project itself.

This module is the broker's process life cycle (start, wait, stop, status) and its CLI; where its
files live and the jar fetch are in `infra.kafka_layout`, its configuration in
`infra.kafka_config`, console clients and topic creation in `infra.kafka_tools`. The public
names of all four are re-exported here. (Past 400 lines: the CLI's sub-commands and their help
are ~120 of them, and the start/wait/stop sequence is meant to be read in one place.)

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
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.kafka_config import (
    SaslPlain,
    _broker_log4j,
    _cluster_id,
    _sasl_kwargs,
    _server_properties,
)
from infra.kafka_layout import (
    FORMAT_TIMEOUT_S,
    HOST,
    KAFKA_VERSION,
    MAIN_CLASS,
    PROBE_TIMEOUT_MS,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    STORAGE_TOOL,
    KafkaInfraError,
    PortInUseError,
    _classpath,
    _java,
    _locked,
    _log_file,
    _pid_alive,
    _port_open,
    _read_state,
    _state_file,
    bootstrap,
    default_port,
    ensure_jars,
    fetch_info,
    free_port,
    free_ports,
    is_running,
    jars_dir,
    log_tail,
    state_dir,
)
from infra.kafka_tls import TlsError, ensure_tls
from infra.kafka_tools import console_consumer_cmd, console_producer_cmd, create_topic

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
    "free_ports",
    "is_running",
    "log_tail",
    "main",
    "start",
    "status",
    "stop",
]



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
