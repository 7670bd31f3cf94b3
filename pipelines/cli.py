"""``driftflow``: the command line. User errors print one line and exit with code 2.

(Past 300 lines: two thirds of it are the sub-commands' argparse options and help texts.)
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Any

# Delayed-label bounds (pipelines.labels says why these values); stdlib-only import
from pipelines.labels import DEFAULT_MAX_SIZE as DEFAULT_LABEL_BUFFER
from pipelines.labels import DEFAULT_TTL_S as DEFAULT_LABEL_TTL
from pipelines.runners.kafka_config import KafkaClientConfig, KafkaUnavailable

# A synthetic stream's length when --limit is not given: long enough to hold its three drifts
# with room to recover after each, short enough that `driftflow run` finishes in seconds.
DEFAULT_SYNTHETIC_RECORDS = 100_000
DEFAULT_SOURCE = "synthetic:SEAa"
KAFKA_PREFIX = "kafka:"


def _runtime(args: argparse.Namespace) -> str:
    """The runtime ``--runtime`` names; without it Ray for a ``kafka:`` source, else local."""
    kafka = args.source.startswith(KAFKA_PREFIX)
    runtime = args.runtime or ("ray" if kafka else "local")
    if kafka != (runtime != "local"):
        raise ValueError(f"--runtime {runtime} reads " + (
            "synthetic:NAME and file:PATH sources; kafka:TOPIC runs on --runtime ray" if kafka
            else "--source kafka:TOPIC; run synthetic: and file: sources with --runtime local"))
    return runtime


def _run(args: argparse.Namespace) -> int:
    return RUNTIMES[_runtime(args)](args)


def _run_local(args: argparse.Namespace) -> int:
    from pipelines.models import make_model
    from pipelines.runners.local import run_local
    from pipelines.sources import open_source

    limit = args.limit
    if limit is None and args.source.startswith("synthetic:"):
        limit = DEFAULT_SYNTHETIC_RECORDS
    source = open_source(args.source, target=args.target, limit=limit, seed=args.seed,
                         no_labels=args.no_labels)
    _say_if_compiling(args.quiet)
    model = make_model(args.model, seed=args.seed)
    metrics = run_local(source, model, out_dir=args.out, progress=not args.quiet,
                        no_labels=args.no_labels)
    _print_summary(metrics, args.out)
    return 0


def _say_if_compiling(quiet: bool) -> None:
    """One line on stderr when the kernels are not compiled yet, so the first run's ~40 s of
    compiling does not look like a hang."""
    from experts._jit_cache import cache_directory, is_warm

    if not quiet and not is_warm():
        print(f"driftflow: compiling the model's kernels (first run of this version, about "
              f"40 s on two cores; cached in {cache_directory()})", file=sys.stderr, flush=True)


def _kafka_job(args: argparse.Namespace) -> Any:
    """The runtime-neutral `KafkaJob` the ``run`` options describe (every Kafka runtime's)."""
    from pipelines.runners.kafka_job import KafkaJob

    return KafkaJob(bootstrap=args.bootstrap, topic=args.source[len(KAFKA_PREFIX):],
                    model=args.model, seed=args.seed, target=args.target,
                    group_id=args.group_id, checkpoint_dir=args.checkpoint_dir,
                    checkpoint_every=args.checkpoint_every,
                    checkpoint_seconds=args.checkpoint_seconds, exactly_once=args.exactly_once,
                    labels_topic=args.labels_topic, no_labels=args.no_labels,
                    label_buffer=args.label_buffer,
                    label_ttl=args.label_ttl, client_config=_client_config(args),
                    kafka_timeout=args.kafka_timeout)


def _client_config(args: argparse.Namespace) -> KafkaClientConfig:
    """Kafka client settings from ``--kafka-config`` and the ``DRIFTFLOW_KAFKA_*`` variables."""
    return KafkaClientConfig.load(args.kafka_config)


def _run_ray(args: argparse.Namespace) -> int:
    from pipelines.runners.ray.driver import run_ray

    job = _kafka_job(args)
    if not args.quiet and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        logging.getLogger("kafka").setLevel(logging.WARNING)   # kafka-python's connection chatter
    metrics = run_ray(job, actors=args.actors, until_end=args.until_end, out_dir=args.out,
                      address=args.ray_address, status_seconds=args.status_every)
    _print_summary(metrics, args.out)
    return 0


def _run_flink(args: argparse.Namespace) -> int:
    from pipelines.runners.flink import FlinkOptions, run_flink

    options = FlinkOptions(parallelism=args.parallelism, key_by=args.key_by,
                           from_savepoint=args.from_savepoint, flink_address=args.flink_address,
                           rest_port=args.flink_rest_port)
    metrics = run_flink(_kafka_job(args), options, until_end=args.until_end, out_dir=args.out)
    _print_summary(metrics, args.out)
    return 0


# ``--runtime NAME``: the function that runs a ``run`` command there. ``local`` reads synthetic
# and file sources in this process; the others read ``kafka:TOPIC`` (a `KafkaJob`, see
# `_kafka_job`). A new runtime is one function and one line here.
RUNTIMES = {
    "local": _run_local,
    "ray": _run_ray,
    "flink": _run_flink,
}


def _record(args: argparse.Namespace) -> int:
    from pipelines.sources.kafka_record import record_topic

    n = record_topic(args.bootstrap, args.topic, args.out, _client_config(args), args.kafka_timeout)
    print(f"recorded {n:,} messages of {args.topic} to {args.out}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from pipelines.sources.kafka_record import replay_file

    n = replay_file(args.bootstrap, args.file, args.to_topic, _client_config(args),
                    args.kafka_timeout)
    print(f"replayed {n:,} messages from {args.file} to {args.to_topic}")
    return 0


def _submit(args: argparse.Namespace) -> int:
    """``ray job submit --address A --working-dir D -- driftflow run ...``; the Ray CLI finds
    the cluster's token itself (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)."""
    import shutil
    import subprocess

    ray = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    if ray is None:
        raise ValueError("the `ray` command was not found (pip install 'ray[default]')")
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    if not rest:
        raise ValueError("nothing to submit: driftflow submit [--address A] -- run ARGS...")
    cmd = [ray, "job", "submit", "--working-dir", args.working_dir]
    if args.address:
        cmd += ["--address", args.address]
    if args.no_wait:
        cmd.append("--no-wait")
    return subprocess.run([*cmd, "--", "driftflow", *rest]).returncode


def _print_summary(metrics: dict[str, Any], out_dir: str | None) -> None:
    rows = [
        ("source", metrics["source"]), ("model", metrics["model"]),
        ("records", f"{metrics['records']:,}"),
        *([("accuracy", f"{metrics['accuracy']:.4f}"), ("kappa", f"{metrics['kappa']:.4f}"),
           ("kappa-M", f"{metrics['kappa_m']:.4f}"), ("kappa-T", f"{metrics['kappa_t']:.4f}")]
          if "accuracy" in metrics else [("accuracy", "not measured (no labels)")]),
        ("records/s", f"{metrics['records_per_second']:,.0f}"),
        ("drifts detected", f"{len(metrics['drifts'])} at {metrics['drifts'][:8]}"
         + (" ..." if len(metrics["drifts"]) > 8 else "")),
        ("experts at end", metrics["experts_final"]),
        ("dead letters", metrics["dead_letters"]), ("skipped (no label)", metrics["skipped"]),
        ("input drifts", _input_drift_text(metrics)),
    ]
    if "labels_joined" in metrics:
        rows += [("labels joined", f"{metrics['labels_joined']:,}"),
                 ("labels expired", f"{metrics['labels_expired']:,}"),
                 ("labels orphaned", f"{metrics['labels_orphaned']:,}")]
    if out_dir:
        rows.append(("outputs", out_dir))
    width = max(len(name) for name, _ in rows)
    print("\n".join(f"{name:<{width}}  {value}" for name, value in rows))


def _input_drift_text(metrics: dict[str, Any]) -> str:
    """How many input drifts, and per feature how many (most first, eight at most)."""
    counts = sorted(metrics.get("input_drift_counts", {}).items(), key=lambda kv: -kv[1])
    per = ", ".join(f"{name} {n}" for name, n in counts[:8]) + (" ..." if len(counts) > 8 else "")
    return f"{len(metrics.get('input_drifts', []))}" + (f" ({per})" if per else "")


# Commands whose arguments belong to another module's ``main(argv)``, by command words
# (``driftflow bench --size ci``, ``driftflow infra kafka --port 9093 start``). `main` hands
# them over before argparse runs: its REMAINDER refuses a leading ``--option``.
DELEGATED = {
    ("bench",): ("bench.harness", "benchmark driftflow against River's and MOA's learners"),
    ("bench-detectors",): ("bench.detectors",
                           "score every drift detector on known change points"),
    ("bench-kafka",): ("bench.kafka_ray", "Kafka -> Ray -> Kafka throughput, actors and restart"),
    ("infra", "kafka"): ("infra.kafka", "the local Apache Kafka broker (KRaft)"),
}


def _parser() -> argparse.ArgumentParser:
    from pipelines.models import MODELS

    parser = argparse.ArgumentParser(prog="driftflow", description=(
        "Keep a classifier accurate on a drifting stream: detectors, a pool of experts, a "
        "co-trained router."))
    commands = parser.add_subparsers(dest="command", required=True)
    boot = {"default": os.environ.get("DRIFTFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            "help": "Kafka bootstrap servers (default %(default)s)"}

    def kafka_client(group: Any) -> None:   # security settings and the broker wait, per command
        group.add_argument("--kafka-config", metavar="FILE",
                           default=os.environ.get("DRIFTFLOW_KAFKA_CONFIG"), help=(
                               "Kafka client properties (key=value: security.protocol, "
                               "sasl.mechanism, sasl.username, sasl.password, ssl.ca.location, "
                               "...); DRIFTFLOW_KAFKA_<NAME> variables override it"))
        group.add_argument("--kafka-timeout", type=float, metavar="SECONDS",
                           default=os.environ.get("DRIFTFLOW_KAFKA_TIMEOUT"),
                           help="wait this long for an unreachable broker at start, then fail "
                                "(default: 30 s for one that does not answer, at once when "
                                "nothing listens at the address)")
    run = commands.add_parser("run", help="run a model test-then-train over a stream")
    run.add_argument("--source", default=DEFAULT_SOURCE,
                     help="synthetic:NAME (LEDa LEDg SEAa SEAg RBFm RBFf), file:PATH "
                          "(.parquet .arrow .feather .ipc .csv .arff) or kafka:TOPIC (on Ray "
                          "unless --runtime says otherwise); default %(default)s")
    run.add_argument("--model", default="adaptive",
                     help=f"one of {', '.join(sorted(MODELS))}; default %(default)s")
    run.add_argument("--target", default="y", help="label column of a file (default %(default)s;"
                     " an ARFF file without it uses its last attribute)")
    run.add_argument("--limit", type=int, default=None, help=(
        f"records to read; a synthetic stream is this long (default {DEFAULT_SYNTHETIC_RECORDS:,})"))
    run.add_argument("--seed", type=int, default=0, help="seed for the model and synthetic streams")
    run.add_argument("--out", default=None, help="directory for predictions, events, metrics, report")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--no-labels", action="store_true", help=(
        "the stream has no labels: predict every record and watch its inputs for drift; a file "
        "needs no label column (one it has is ignored), metrics.json reports the input drifts "
        "instead of accuracy"))
    run.add_argument("--runtime", choices=tuple(RUNTIMES), default=None, help=(
        "where the model runs: local (synthetic: and file: sources, the default for them) or a "
        "Kafka runtime (ray, the default for kafka:TOPIC)"))
    ray = run.add_argument_group("Kafka runtimes (--source kafka:TOPIC)")
    ray.add_argument("--actors", type=int, default=1, help="Ray actors (partition groups)")
    ray.add_argument("--status-every", type=float, default=5.0, metavar="SECONDS",
                     help="log a one-line status this often (default 5; --quiet turns it off)")
    ray.add_argument("--until-end", action="store_true",
                     help="stop at the topic's end offsets seen at start (else run until Ctrl-C)")
    ray.add_argument("--bootstrap", **boot)
    kafka_client(ray)
    ray.add_argument("--group-id", default=None, help="consumer group (default driftflow-TOPIC)")
    ray.add_argument("--checkpoint-dir", default=None, help="local path or pyarrow.fs URI")
    ray.add_argument("--checkpoint-every", type=int, default=1000, help="records per partition")
    ray.add_argument("--checkpoint-seconds", type=float, default=30.0)
    ray.add_argument("--exactly-once", action="store_true",
                     help="outputs and offsets in Kafka transactions (read_committed readers)")
    ray.add_argument("--labels-topic", default=None, help=(
        "delayed labels: {\"id\": ..., \"y\": ...} messages on this topic, joined to their "
        "record by id (records may then come without a label; each is predicted at once and "
        "learned when its label arrives). At-least-once only (not with --exactly-once)"))
    ray.add_argument("--label-buffer", type=int, default=DEFAULT_LABEL_BUFFER, help=(
        "records waiting for a label (and labels waiting for a record) kept per buffer; the "
        "oldest is dropped and counted past it, so memory stays bounded (~30 MB for SEA-sized "
        "records at the default %(default)s)"))
    ray.add_argument("--label-ttl", type=float, default=DEFAULT_LABEL_TTL, help=(
        "seconds a record waits for its label (and a label for its record) before it is dropped "
        "and counted; a label much later than this rarely helps a drifting model "
        "(default %(default)s)"))
    ray.add_argument("--ray-address", default=None,
                     help="existing cluster (default: RAY_ADDRESS, else a new local one)")
    flink = run.add_argument_group("flink runtime (--runtime flink)")
    flink.add_argument("--parallelism", type=int, default=1, help="model operator parallelism")
    flink.add_argument("--key-by", default=None, metavar="FIELD",
                       help="one model per value of this JSON field (default: per partition)")
    flink.add_argument("--from-savepoint", default=None, metavar="PATH",
                       help="start from this savepoint or retained checkpoint")
    flink.add_argument("--flink-address", default=None, metavar="HOST:PORT",
                       help="submit to a running Flink cluster's REST endpoint "
                            "(default: a local mini-cluster)")
    flink.add_argument("--flink-rest-port", type=int, default=0, metavar="PORT",
                       help="the local mini-cluster's REST endpoint (web UI data: jobs, "
                            "checkpoints, the model's metrics; default: a free port)")
    run.set_defaults(handler=_run)
    for words, (_, text) in DELEGATED.items():
        if len(words) == 1:   # listed in --help only; `main` hands them over
            commands.add_parser(words[0], help=text, add_help=False)
    record = commands.add_parser("record", help="copy a Kafka topic to a Parquet file")
    record.add_argument("--topic", required=True)
    record.add_argument("--out", required=True, help="Parquet file to write")
    record.add_argument("--bootstrap", **boot)
    kafka_client(record)
    record.set_defaults(handler=_record)
    replay = commands.add_parser("replay", help="produce a recorded Parquet file to a topic")
    replay.add_argument("file")
    replay.add_argument("--to-topic", required=True)
    replay.add_argument("--bootstrap", **boot)
    kafka_client(replay)
    replay.set_defaults(handler=_replay)
    submit = commands.add_parser("submit", help="run driftflow on a Ray cluster (ray job submit)")
    submit.add_argument("--address", default=None,
                        help="Ray job server, e.g. http://127.0.0.1:8265 (else RAY_ADDRESS)")
    submit.add_argument("--working-dir", default=".", help="shipped to the cluster (default .)")
    submit.add_argument("--no-wait", action="store_true", help="return once submitted")
    submit.add_argument("rest", nargs=argparse.REMAINDER, help="-- run ARGS...")
    submit.set_defaults(handler=_submit)
    infra = commands.add_parser("infra", help="start, stop or inspect real components")
    infra_commands = infra.add_subparsers(dest="component", required=True)
    infra_commands.add_parser("kafka", help=DELEGATED[("infra", "kafka")][1], add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``driftflow`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for words, (module, _) in DELEGATED.items():
        if tuple(argv[:len(words)]) == words:
            return importlib.import_module(module).main(argv[len(words):])
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, OSError, KafkaUnavailable) as exc:   # SourceError, CheckpointError,
        # KafkaConfigError, a missing file or an unwritable --out included
        from pipelines.validation import printable  # one line, no control characters

        print(f"driftflow: error: {printable(exc, 1000)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("driftflow: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
