"""``python -m bench.moa_build``: fetch MOA's jars (Maven Central) and compile
bench/moa/Prequential.java now, rather than on the bench's first use of a MOA peer (CI does it
in its setup). Exit 0 when ready, 2 with a one-line reason when not."""
from __future__ import annotations

import sys

from bench.moa_peers import MoaUnavailable, ensure_built


def main() -> int:
    try:
        ensure_built()
    except MoaUnavailable as exc:
        print(f"bench.moa_build: {exc}", file=sys.stderr)
        return 2
    print("MOA peers ready: bench/moa/lib/ (MOA 2024.07.0), bench/moa/classes/Prequential.class")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
