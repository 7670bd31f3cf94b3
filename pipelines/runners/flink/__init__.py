"""The Flink runner: a KafkaJob as a PyFlink DataStream job (see `job.run_flink`)."""
from pipelines.runners.flink.job import FlinkOptions, run_flink

__all__ = ["FlinkOptions", "run_flink"]
