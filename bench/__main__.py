"""``python -m bench``: run the benchmark harness (see `bench.harness`)."""
from __future__ import annotations

import sys

from bench.harness import main

if __name__ == "__main__":
    sys.exit(main())
