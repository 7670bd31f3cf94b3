"""The Flink runner: a KafkaJob as a PyFlink DataStream job (see `job.run_flink`)."""
from pipelines.runners.flink.job import (
    FlinkOptions,
    run_flink,
    start_flink,
    stop_with_savepoint,
)

__all__ = ["FlinkOptions", "run_flink", "start_flink", "stop_with_savepoint"]
