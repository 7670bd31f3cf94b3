"""Where the real datasets live: ``$DRIFTFLOW_DATASETS``, else ``shared/datasets`` beside the
repository clone (as CI lays it out). Only Electricity is used: ``elecNormNew.arff``, the
normalised Elec2 of MOA and the stream-learning literature (45,312 records, 8 features)."""
from __future__ import annotations

import os
from pathlib import Path

ELECTRICITY_FILE = "elecNormNew.arff"


def datasets_dir() -> Path:
    """``$DRIFTFLOW_DATASETS`` or ``../shared/datasets`` seen from the repository root."""
    env = os.environ.get("DRIFTFLOW_DATASETS")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "datasets"


def electricity_path() -> Path:
    """The Electricity ARFF file (it may be absent: callers check)."""
    return datasets_dir() / ELECTRICITY_FILE
