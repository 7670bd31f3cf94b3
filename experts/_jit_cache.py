"""Where numba keeps driftflow's compiled kernels, and when they are stale.

numba's own cache (``cache=True``) checks only the file of the function it compiled: a kernel
that inlines a function from another file keeps running the old inlined code after that file
changes (an upgrade, an edit), and a copy of the code in another folder (``ray job submit
--working-dir`` unpacks one per job) compiles everything again, ~60 s. This locator, tried
before numba's, serves every compiled function of driftflow's packages from
``$DRIFTFLOW_NUMBA_CACHE`` (default ``~/.cache/driftflow/numba``) under a digest of all the
compiled packages' sources: any change to any of them gives a fresh directory, and the same
sources in any folder find the same compiled code. Old digests' directories are not removed.
Import this module before any ``@njit(cache=True)`` is defined (the packages' ``__init__`` do).
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

from numba.core import caching

CACHE_ENV = "DRIFTFLOW_NUMBA_CACHE"
_ROOT = Path(__file__).resolve().parent.parent
# the folders whose sources the compiled kernels are built from (relative to the project root)
_COMPILED_PACKAGES = ("experts", "detectors", "router", "pipelines/models")


def _package_of(py_file: str) -> str | None:
    """``py_file``'s path relative to the project root, when it is in a compiled package."""
    try:
        relative = Path(py_file).resolve().relative_to(_ROOT).as_posix()
    except ValueError:
        return None
    return relative if relative.startswith(_COMPILED_PACKAGES) else None


@functools.cache
def sources_digest() -> str:
    """SHA-256 (hex, 16 characters) over the compiled packages' Python sources, in path order."""
    digest = hashlib.sha256()
    for package in _COMPILED_PACKAGES:
        for path in sorted((_ROOT / package).rglob("*.py")):
            digest.update(path.relative_to(_ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_directory() -> Path:
    """Where this version of the sources keeps its compiled kernels."""
    base = os.environ.get(CACHE_ENV) or os.path.join(Path.home(), ".cache", "driftflow", "numba")
    return Path(base) / sources_digest()


def is_warm() -> bool:
    """Whether compiled kernels of this version of the sources are on disk (else the first
    model built compiles them: ~58 s of CPU, ~40 s on two cores with
    `pipelines.models.compiled.parallel_compile`)."""
    directory = cache_directory()
    return directory.is_dir() and any(directory.rglob("*.nbi"))


class SourcesDigestLocator(caching.InTreeCacheLocator):
    """numba cache locator for driftflow's packages: keyed by `sources_digest`, not mtimes."""

    def __init__(self, py_func: Any, py_file: str) -> None:
        super().__init__(py_func, py_file)
        relative_dir = os.path.dirname(_package_of(py_file) or "")
        self._cache_path = os.path.join(cache_directory(), relative_dir)

    def get_source_stamp(self) -> str:
        return sources_digest()

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> SourcesDigestLocator | None:
        if _package_of(py_file) is None:
            return None
        return super().from_function(py_func, py_file)


if SourcesDigestLocator not in caching.CacheImpl._locator_classes:
    caching.CacheImpl._locator_classes.insert(0, SourcesDigestLocator)
