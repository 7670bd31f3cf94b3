"""A standalone Flink cluster on this machine, from the scripts the apache-flink wheel ships
(``pyflink/bin/jobmanager.sh`` and ``taskmanager.sh``, Java 17): one JobManager and one
TaskManager, in the foreground of processes this module starts and stops, with their own
configuration directory, free ports and logs under ``workdir``. For tests and for trying
``driftflow run --runtime flink --flink-address`` against a real cluster.

CLI: ``python -m infra.flink_cluster DIR`` runs one until Ctrl-C (prints its REST address).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from infra.kafka_layout import free_ports

# A JobManager and a TaskManager start in ~10-20 s on a busy 2-core machine; the TaskManager
# retries its registration every 10 s, so 120 s leaves several attempts.
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
# Small enough for a laptop or a CI box, big enough for two Python operators' managed memory.
JOBMANAGER_MEMORY = "1024m"
TASKMANAGER_MEMORY = "1600m"


class FlinkClusterError(RuntimeError):
    """The cluster did not come up; the message has the logs' tail."""


def flink_home() -> Path:
    import pyflink

    return Path(pyflink.__file__).parent


def _config(rpc_port: int, rest_port: int, slots: int, prometheus: str | None) -> str:
    """config.yaml: the wheel's JVM options (Java 17 module opens), this cluster's ports and,
    with ``prometheus`` (a port range: the JobManager and the TaskManager each take one), the
    Prometheus reporter the wheel ships in ``plugins/``."""
    shipped = (flink_home() / "conf" / "config.yaml").read_text()
    java_opts = re.search(r"^\s*all: (.*)$", shipped, re.MULTILINE)
    opts = f"env:\n  java:\n    opts:\n      all: {java_opts.group(1)}\n" if java_opts else ""
    return opts + (
        f"jobmanager:\n  bind-host: localhost\n  rpc:\n    address: localhost\n"
        f"    port: {rpc_port}\n  memory:\n    process:\n      size: {JOBMANAGER_MEMORY}\n"
        f"taskmanager:\n  bind-host: localhost\n  host: localhost\n"
        f"  numberOfTaskSlots: {slots}\n  memory:\n    process:\n"
        f"      size: {TASKMANAGER_MEMORY}\n"
        f"rest:\n  address: localhost\n  bind-address: localhost\n  port: {rest_port}\n"
        + (f"metrics:\n  reporter:\n    prom:\n      factory:\n        class: "
           f"org.apache.flink.metrics.prometheus.PrometheusReporterFactory\n"
           f"      port: {prometheus}\n" if prometheus else ""))


def _overview(rest: str) -> dict:
    with urllib.request.urlopen(f"http://{rest}/overview", timeout=5) as answer:
        return json.loads(answer.read())


@contextlib.contextmanager
def standalone_cluster(workdir: str | os.PathLike, slots: int = 2,
                       prometheus: str | None = None) -> Iterator[str]:
    """Start a cluster, yield its REST address ``localhost:PORT`` once a TaskManager has
    registered, stop both processes after. ``prometheus``: a port range ``A-B`` for Flink's
    Prometheus reporter (each process serves ``/metrics`` on one of them)."""
    work = Path(workdir)
    conf, logs = work / "conf", work / "log"
    conf.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    for name in ("log4j-console.properties", "log4j.properties", "logback-console.xml"):
        source = flink_home() / "conf" / name
        if source.exists():
            (conf / name).write_bytes(source.read_bytes())
    rpc_port, rest_port = free_ports(2)
    (conf / "config.yaml").write_text(_config(rpc_port, rest_port, slots, prometheus))
    env = {**os.environ, "FLINK_CONF_DIR": str(conf), "FLINK_LOG_DIR": str(logs)}
    rest = f"localhost:{rest_port}"
    processes = []
    try:
        for script in ("jobmanager.sh", "taskmanager.sh"):
            out = open(logs / f"{script}.out", "wb")   # noqa: SIM115 - the process owns it
            processes.append(subprocess.Popen(
                ["bash", str(flink_home() / "bin" / script), "start-foreground"], env=env,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True))
            out.close()
        _wait_for_taskmanager(rest, processes, logs)
        yield rest
    finally:
        for process in processes:
            _stop(process)


def _wait_for_taskmanager(rest: str, processes: list[subprocess.Popen], logs: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise FlinkClusterError(f"a Flink process exited at start:\n{_tail(logs)}")
        try:
            if _overview(rest)["taskmanagers"] >= 1:
                return
        except OSError:
            pass   # not listening yet
        time.sleep(1.0)
    raise FlinkClusterError(f"no TaskManager registered within {START_TIMEOUT_S:.0f} s:\n"
                            f"{_tail(logs)}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the process's session (the script and its JVM), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _tail(logs: Path, lines: int = 20) -> str:
    return "\n".join(f"--- {f.name}\n" + "\n".join(f.read_text(errors="replace")
                                                   .splitlines()[-lines:])
                     for f in sorted(logs.glob("*")) if f.is_file())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m infra.flink_cluster WORKDIR", file=sys.stderr)
        return 2
    with standalone_cluster(args[0]) as rest:
        print(f"flink cluster at {rest} (REST and web UI); Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
