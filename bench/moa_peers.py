"""MOA's learners as bench peers, run from MOA's own jar on exactly the records our models see.

The records of a (stream, seed) are written to an ARFF file, then `bench/moa/Prequential.java`
runs the named MOA learner prequentially on it in a JVM subprocess and returns its predictions
and the wall seconds of its predict+learn loop alone, as the bench times the Python models (the
file is read before the clock starts, so JVM start and reading are not in it; JIT compilation
during the loop is), and the JVM's CPU seconds over that loop.
LED's attributes are declared nominal ``{0,1}``, as MOA's ``LEDGenerator`` declares them; string
features (Electricity's ``day``) are nominal with the values seen; the rest numeric.

MOA 2024.07.0 and its dependencies come from Maven Central (``mvn dependency:copy-dependencies``
into bench/moa/lib/), the class is compiled with ``javac`` into bench/moa/classes/, both on
first use and git-ignored: ``python -m bench.moa_build`` does it ahead (CI does).
"""
from __future__ import annotations

import fcntl
import json
import math
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MOA_DIR = Path(__file__).resolve().parent / "moa"
_LIB, _CLASSES = MOA_DIR / "lib", MOA_DIR / "classes"
_SOURCE = MOA_DIR / "Prequential.java"
_MOA_JAR = "moa-2024.07.0.jar"
# One JVM per learner run: a heap cap above ARF(100)'s needs (~0.8 GiB resident on LED at 100k
# records) and the throughput collector (a batch loop, no pause target).
_JVM_OPTIONS = ("-Xmx2g", "-XX:+UseParallelGC")

MOA_LEARNERS: dict[str, tuple[str, int]] = {
    # name: (MOA CLI string, ensemble size). HoeffdingTree with the DriftMoE paper's settings
    # (grace period 50, split confidence 1e-7; tie threshold 0.05 and naive-Bayes-adaptive
    # leaves are MOA's defaults), as bench/moa/LedTree.java; ARF with MOA's defaults but size.
    "moa-ht": ("trees.HoeffdingTree -g 50 -c 1e-7", 1),
    "moa-arf10": ("meta.AdaptiveRandomForest -s 10", 10),
    "moa-arf100": ("meta.AdaptiveRandomForest -s 100", 100),
}
"""MOA peers by bench name: (learner as a MOA CLI string, number of models)."""


class MoaUnavailable(RuntimeError):
    """java, javac or mvn is missing, or fetching MOA / compiling the class failed."""


def ensure_built() -> None:
    """Fetch MOA's jars and compile Prequential.java unless already done (a file lock keeps
    two bench workers from doing it at once). Raises `MoaUnavailable` with a one-line reason."""
    missing = [tool for tool in ("java", "javac", "mvn") if shutil.which(tool) is None]
    if missing:
        raise MoaUnavailable(f"MOA peers need {', '.join(missing)} on PATH (Java 17+, Maven); "
                             "install them or leave the moa-* models out (--models)")
    _CLASSES.mkdir(exist_ok=True)
    with open(_CLASSES / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (_LIB / _MOA_JAR).is_file():
            _tool(["mvn", "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={_LIB}"],
                  "fetching MOA from Maven Central")
        target = _CLASSES / "Prequential.class"
        if not target.is_file() or target.stat().st_mtime < _SOURCE.stat().st_mtime:
            _tool(["javac", "-nowarn", "-cp", f"{_LIB}/*", "-d", str(_CLASSES), str(_SOURCE)],
                  "compiling bench/moa/Prequential.java")


def _tool(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, cwd=MOA_DIR, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise MoaUnavailable(f"{what} failed (exit {done.returncode}): {tail[0]}")


def nominal_features(label: str, xs: Sequence[dict]) -> dict[str, list[str]]:
    """Nominal features and their values: all of LED's as ``0``/``1`` (MOA's LED declares them
    so), and every feature holding strings, with the values seen in ``xs`` (sorted)."""
    names = list(dict.fromkeys(name for x in xs for name in x))
    if label.startswith("LED"):
        return {name: ["0", "1"] for name in names}
    values: dict[str, set[str]] = {}
    for x in xs:
        for name, value in x.items():
            if isinstance(value, str):
                values.setdefault(name, set()).add(value)
    return {name: sorted(seen) for name, seen in values.items()}


_PLAIN = re.compile(r"[A-Za-z0-9_.+-]+")


def _quoted(value: str) -> str:
    """An ARFF name or nominal value, quoted only when it must be."""
    if _PLAIN.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _cell(value: Any, nominal: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "?"
    if nominal:
        return _quoted(str(int(value)) if isinstance(value, float) else str(value))
    return repr(float(value))


def write_arff(path: Path, label: str, xs: Sequence[dict], ys: Sequence[Any]) -> list[Any]:
    """Write the records as ARFF (class last) and return the class labels in the order of
    their ARFF index, which is what MOA's predictions are."""
    names = list(dict.fromkeys(name for x in xs for name in x))
    nominal = nominal_features(label, xs)
    classes = sorted(set(ys), key=lambda c: (str(type(c)), c))
    lines = ["@RELATION driftflow"]
    for i, name in enumerate(names):
        kind = ("{" + ",".join(map(_quoted, nominal[name])) + "}" if name in nominal
                else "NUMERIC")
        lines.append(f"@ATTRIBUTE {_quoted(f'f{i}_{name}')} {kind}")
    lines += ["@ATTRIBUTE class {" + ",".join(_quoted(str(c)) for c in classes) + "}", "@DATA"]
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")
        for x, y in zip(xs, ys):
            cells = [_cell(x.get(name), name in nominal) for name in names]
            out.write(",".join(cells) + "," + _quoted(str(y)) + "\n")
    return classes


def run_learner(name: str, arff: Path, classes: list[Any], seed: int) -> dict[str, Any]:
    """Run MOA peer ``name`` on ``arff`` (from `write_arff`, whose ``classes`` map MOA's class
    indices back to labels): ``predictions`` (labels), ``seconds`` of the timed loop,
    ``cpu_seconds``, ``records``, ``accuracy`` (MOA's own count), ``measurements``."""
    ensure_built()
    cli, _ = MOA_LEARNERS[name]
    preds_path = arff.with_suffix(f".{name}.pred")
    done = subprocess.run(
        ["java", *_JVM_OPTIONS, "-cp", f"{_LIB}/*:{_CLASSES}", "Prequential", str(arff), cli,
         str(preds_path), str(seed + 1)],   # MOA's default seed is 1: bench seed 0 keeps it
        capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no output"]
        causes = [line for line in lines if not line.startswith(("\t", " "))
                  and ("Exception" in line or "Error" in line)]
        raise MoaUnavailable(f"MOA {name} exited {done.returncode}: {(causes or lines)[-1]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    indices = preds_path.read_text().split()
    preds_path.unlink()
    result["predictions"] = [classes[int(i)] for i in indices]
    return result


class MoaStreamFile:
    """One ARFF export of a (stream, seed)'s records, written on first use and shared by the
    MOA peers run on it; `close` removes it."""

    def __init__(self, label: str, xs: Sequence[dict], ys: Sequence[Any]) -> None:
        self._label, self._xs, self._ys = label, xs, ys
        self._dir: tempfile.TemporaryDirectory | None = None
        self._classes: list[Any] = []

    def run(self, name: str, seed: int) -> dict[str, Any]:
        """`run_learner` on this stream's records (exported on the first call)."""
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="driftflow-moa-")
            self._classes = write_arff(Path(self._dir.name) / "stream.arff", self._label,
                                       self._xs, self._ys)
        return run_learner(name, Path(self._dir.name) / "stream.arff", self._classes, seed)

    def close(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

