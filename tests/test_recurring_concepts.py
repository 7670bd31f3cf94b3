"""Recurring concepts (issue 17, item 2): with ``recall_age`` ``adaptive`` archives a frozen copy
of its best expert at each drift and revives it when the concept returns; SEA's last concept is
its first."""
from __future__ import annotations

from bench.recurring import run_once


def test_recall_revives_the_first_concept_and_predicts_its_return_better() -> None:
    """SEAa (100,000-record positions, seed 2), cut 2,000 records after the return at 74,998:
    the copy archived at the first drift is revived within 1,000 records of the return, and the
    1,000 records after the return are predicted at least 1.5 points better than by the default
    pool (measured +2.3, bench/DETECTORS.md), which revives nothing."""
    default = run_once(100_000, 2, stop=77_000)
    recall = run_once(100_000, 2, stop=77_000, recall_age=1000)
    back = default["return"]
    assert [p for p in recall["revived"] if back <= p < back + 1000], recall["revived"]
    assert default["revived"] == []
    assert recall["after"]["1000"] >= default["after"]["1000"] + 1.5, (default, recall)
