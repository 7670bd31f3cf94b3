"""Results files record which code made them: the git commit and whether the tree was dirty."""
from __future__ import annotations

import subprocess
from pathlib import Path

from bench.provenance import code_line, code_version


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_commit_and_dirty_state_of_a_clone(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert code_version(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "untracked.txt").write_text("results\n")       # not code: still clean
    assert code_version(tmp_path)["dirty"] is False
    (tmp_path / "a.py").write_text("x = 2\n")
    version = code_version(tmp_path)
    assert version == {"commit": head, "dirty": True}
    assert code_line(version) == (f"- Code: commit `{head[:12]}`, with uncommitted changes "
                                  "(the figures may not match any commit)")


def test_outside_a_clone(tmp_path: Path) -> None:
    assert code_version(tmp_path) == {"commit": None, "dirty": None}
    assert "unknown" in code_line(code_version(tmp_path))


def test_bench_results_record_the_code(tmp_path: Path) -> None:
    import json

    from bench.harness import main

    out = tmp_path / "out"
    assert main(["--limit", "200", "--streams", "SEAa", "--models", "river-ht", "--out",
                 str(out), "--jobs", "1", "--quiet", "--mem-records", "0"]) == 0
    meta = json.loads((out / "results.json").read_text())["meta"]
    assert meta["code"] == code_version()
    assert code_line(meta["code"]) in (out / "RESULTS.md").read_text()
