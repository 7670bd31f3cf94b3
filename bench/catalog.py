"""What `driftflow bench` runs: every benchmarked model by name (driftflow's, River's peers and
MOA's, `bench.moa_peers`) and the streams (the paper's synthetic ones and Electricity), with the
paper's figures."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from river import base, ensemble, forest, tree

from bench.moa_peers import MOA_LEARNERS
from pipelines import STREAMS as SYNTHETIC_STREAMS
from pipelines import make_model
from pipelines.sources.datasets import electricity_path

MODEL_REGISTRY: dict[str, Callable[[int], base.Classifier]] = {
    "adaptive": lambda seed: make_model("adaptive", seed),
    "driftmoe-data": lambda seed: make_model("driftmoe-data", seed),
    "driftmoe-task": lambda seed: make_model("driftmoe-task", seed),
    # River's peers, River defaults throughout (SRP's default base model is
    # HoeffdingTreeClassifier(grace_period=50, delta=0.01), River's own choice).
    "river-ht": lambda seed: tree.HoeffdingTreeClassifier(),
    "river-hat": lambda seed: tree.HoeffdingAdaptiveTreeClassifier(seed=seed),
    "river-arf10": lambda seed: forest.ARFClassifier(n_models=10, seed=seed),
    "river-srp10": lambda seed: ensemble.SRPClassifier(n_models=10, seed=seed),
    "river-lb10": lambda seed: ensemble.LeveragingBaggingClassifier(
        model=tree.HoeffdingTreeClassifier(), n_models=10, seed=seed),
}
"""Every benchmarked Python model by name: ``factory(seed) -> River classifier``."""
ALL_MODELS = [*MODEL_REGISTRY, *MOA_LEARNERS]
"""Every model name `--models` takes: the Python ones, then MOA's (run in a JVM)."""

ARF, HT, MOE_DATA, ADAPTIVE = "river-arf10", "river-ht", "driftmoe-data", "adaptive"
MOA_ARF10, MOA_ARF100 = "moa-arf10", "moa-arf100"
# SRP(10) and LeveragingBagging(10) run ~40 records/s on LED: at ci size they alone would take
# ~3 h, so they run when asked (``--models``, or ``--models all``), not by default.
SLOW_PEERS = ("river-srp10", "river-lb10")
DEFAULT_MODELS = [name for name in ALL_MODELS if name not in SLOW_PEERS]

# -- streams -----------------------------------------------------------------------------------

ELEC = "elec"
DEFAULT_STREAMS = [*SYNTHETIC_STREAMS, ELEC]
SIZES = {"smoke": 2_000, "ci": 100_000, "full": 1_000_000}
PAPER_MOE_DATA = {  # DriftMoE paper, MoE-Data, mean of 10 seeds, 1,000,000 records (elec: whole)
    "LEDa": 73.77, "LEDg": 73.11, "SEAa": 89.09, "SEAg": 88.74, "RBFm": 79.89, "RBFf": 61.90,
    ELEC: 83.76,
}
def resolve_stream(name: str) -> tuple[str, str]:
    """``(label, source spec)`` for a ``--streams`` entry: a synthetic name (``SEAa``),
    ``synthetic:NAME``, ``elec`` / ``electricity`` or ``file:PATH``."""
    bare = name.removeprefix("synthetic:")
    if bare in SYNTHETIC_STREAMS:
        return bare, f"synthetic:{bare}"
    if name.lower() in (ELEC, "electricity"):
        return ELEC, f"file:{electricity_path()}"
    if name.startswith("file:"):
        return Path(name[len("file:"):]).name.split(".")[0], name
    raise ValueError(
        f"unknown stream {name!r}; use one of {', '.join(DEFAULT_STREAMS)} or file:PATH")
