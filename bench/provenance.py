"""What made a results file: the git commit and whether the work tree had uncommitted changes
when the run started, and the machine, recorded in every results file (RESULTS.md, KAFKA.md,
DETECTORS.md and their JSON) so a reader can tell which code produced the figures."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def code_version(root: Path = ROOT) -> dict[str, Any]:
    """``{"commit": full hash, "dirty": True when tracked files differ from it}``; both None
    outside a git clone (e.g. an installed copy)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                 timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit.strip() if commit else None,
            "dirty": None if status is None else bool(status.strip())}


def commit_label(version: dict[str, Any] | None = None) -> str:
    """``abc1234def56`` or ``abc1234def56 (dirty)`` for a results file (``code_version()``'s by
    default); ``unknown`` outside a git clone."""
    version = code_version() if version is None else version
    if not version.get("commit"):
        return "unknown"
    return version["commit"][:12] + (" (dirty)" if version.get("dirty") else "")


def code_line(version: dict[str, Any] | None) -> str:
    """The Markdown line for a results file: ``- Code: commit `abc1234` ...``."""
    if not version or not version.get("commit"):
        return "- Code: unknown (not run from a git clone)"
    state = ("with uncommitted changes (the figures may not match any commit)"
             if version.get("dirty") else "clean work tree")
    return f"- Code: commit `{version['commit'][:12]}`, {state}"


def machine_info() -> dict[str, Any]:
    """The machine a run used: usable CPUs, CPU model, RAM (bytes), platform, versions."""
    cpu = "unknown"
    ram = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    import numpy
    import river
    from threadpoolctl import threadpool_info

    blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    return {
        "nproc": usable, "cpu_count": os.cpu_count(), "cpu_model": cpu, "ram_bytes": ram,
        "platform": platform.platform(), "python": platform.python_version(),
        "river": river.__version__, "numpy": numpy.__version__,
        "blas_threads": max(blas) if blas else None,   # the most any loaded BLAS uses
    }
