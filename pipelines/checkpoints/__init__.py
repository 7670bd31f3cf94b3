"""Checkpoints: the versioned, optionally signed envelope, and atomic storage through pyarrow.fs."""
from pipelines.checkpoints.envelope import KEY_ENV, CheckpointError, seal, unseal
from pipelines.checkpoints.storage import read_bytes, write_atomic

__all__ = ["KEY_ENV", "CheckpointError", "read_bytes", "seal", "unseal", "write_atomic"]
