"""River's side of the MOA check (README.md here): our tree expert with the paper's settings on
our MOA-made LED, drifting from 3 to 5 swapped segments at record ``centre`` (width 50).

    python bench/moa/river_led.py [records] [centre] [block]
"""
from __future__ import annotations

import sys

import experts
from pipelines.sources.synthetic import _compose, _led_concept, _named


def main(n: int = 200_000, centre: int = 100_000, block: int = 10_000) -> None:
    records = _compose([_named(_led_concept(3, 1)), _named(_led_concept(5, 2))], [centre], 50, 7)
    tree = experts.REGISTRY["hoeffding-tree"]()
    correct = in_block = 0
    windows = []
    for t in range(1, n + 1):
        x, y = next(records)
        proba = tree.predict_proba_one(x)
        hit = experts.top_class(proba) == y
        correct += hit
        in_block += hit
        tree.learn_one(x, y)
        if t % block == 0:
            windows.append(f"{100 * in_block / block:.1f}")
            in_block = 0
    print(f"River HoeffdingTree: accuracy {100 * correct / n:.2f} %; per {block} records: "
          + " ".join(windows))


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
