"""The DriftMoE paper's synthetic streams (LED, SEA, RandomRBF with drift), as MOA makes them:
SEA and RandomRBF from River's generators, LED from our own (River's differs from MOA's, below).

Drifting concepts are composed the way MOA's ConceptDriftStream does it: at record ``t`` the next
concept is drawn with probability ``sigmoid(4 (t - centre) / width)``, and a concept's generator
advances only when it is drawn. Four concepts nest three such compositions. Centres are absolute
record indices (the paper's positions for 1,000,000 records, scaled to ``n``), so each stream's
``drift_positions`` are where the drifts really are. The sigmoid is our own: River 0.23's
ConceptDriftStream overflows in ``exp`` far from the centre.
"""
from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from river.datasets import synth

Example = tuple[dict[str, float], int]

PAPER_N = 1_000_000  # the paper's stream length; drift centres below are given at this scale
_ABRUPT_CENTRES = (249_975, 499_975, 749_975)
_ABRUPT_WIDTH = 50  # records; kept as is whatever n is (an abrupt drift stays abrupt)
_GRADUAL_CENTRES = (225_000, 475_000, 725_000)
_GRADUAL_WIDTH_FRACTION = 0.05  # of n: 50,000 records at the paper's 1,000,000
# Beyond |z| = 40 the sigmoid is within exp(-40) ~ 4e-18 of 0 or 1, below random()'s 2**-53
# resolution, so the choice is made without drawing (no overflow, and abrupt streams stay cheap).
_SIGMOID_SATURATION = 40.0

_SEA_FUNCTIONS = (1, 2, 4, 1)  # MOA SEA functions of the paper's SEAa/SEAg
_SEA_THRESHOLDS = (8.0, 9.0, 7.0, 9.5)  # MOA function f uses threshold [f - 1]
_RIVER_SEA_THRESHOLDS = {0: 8.0, 1: 9.0, 2: 7.0, 3: 9.5}  # River's SEA variant -> threshold
_LED_DRIFT_FEATURES = (1, 3, 5, 7)
_NOISE = 0.1  # the paper's 10 % label (SEA) or segment (LED) noise
# The segments lit for each digit 0-9 (top, upper left, upper right, middle, lower left, lower
# right, bottom): the LED problem's standard table, as MOA and River have it.
_LED_DIGITS = (
    (1, 1, 1, 0, 1, 1, 1), (0, 0, 1, 0, 0, 1, 0), (1, 0, 1, 1, 1, 0, 1), (1, 0, 1, 1, 0, 1, 1),
    (0, 1, 1, 1, 0, 1, 0), (1, 1, 0, 1, 0, 1, 1), (1, 1, 0, 1, 1, 1, 1), (1, 0, 1, 0, 0, 1, 0),
    (1, 1, 1, 1, 1, 1, 1), (1, 1, 1, 1, 0, 1, 1),
)
_LED_SEGMENTS = 7
_LED_FEATURES = 24   # 7 segments and 17 irrelevant random bits


@dataclass(frozen=True)
class SyntheticStream:
    """A named synthetic stream of ``(x, y)`` pairs: ``n`` records (None: endless), features
    named by strings, integer labels, and the true drift centres as record indices (empty when
    drift is continuous, as in RandomRBF)."""

    name: str
    n: int | None
    seed: int
    feature_names: list[str]
    n_classes: int
    drift_positions: list[int]
    _examples: Callable[[], Iterator[Example]]

    def __iter__(self) -> Iterator[Example]:
        examples = self._examples()
        return examples if self.n is None else itertools.islice(examples, self.n)


def _sigmoid_choice(rng: random.Random, t: int, centre: float, width: float) -> bool:
    """True when record ``t`` is drawn from the concept after the drift at ``centre``."""
    z = 4.0 * (t - centre) / width
    if z >= _SIGMOID_SATURATION:
        return True
    if z <= -_SIGMOID_SATURATION:
        return False
    return rng.random() < 1.0 / (1.0 + math.exp(-z))


def _compose(
    concepts: Sequence[Iterator[Example]], centres: Sequence[float], width: float, seed: int
) -> Iterator[Example]:
    """Nested concept-drift composition of ``concepts`` with a drift at each centre."""
    rng = random.Random(seed)
    last = len(concepts) - 1
    for t in itertools.count():
        k = 0
        while k < last and _sigmoid_choice(rng, t, centres[k], width):
            k += 1
        yield next(concepts[k])


def _named(examples: Iterator[tuple[dict[Any, Any], Any]]) -> Iterator[Example]:
    """Examples with string feature names, float values and int labels."""
    names: dict[object, str] = {}
    for x, y in examples:
        if len(names) != len(x):
            names = {k: str(k) for k in x}
        yield {names[k]: float(v) for k, v in x.items()}, int(y)


def _seeds(seed: int, count: int) -> list[int]:
    """Independent sub-seeds, so concepts do not replay each other's draws."""
    rng = random.Random(seed)
    return [rng.getrandbits(32) for _ in range(count)]


def _drift(abrupt: bool, n: int | None) -> tuple[list[int], float]:
    """Drift centres (record indices) and width (records) scaled to a stream of ``n``."""
    scale = (n if n is not None else PAPER_N) / PAPER_N
    if abrupt:
        return [round(c * scale) for c in _ABRUPT_CENTRES], _ABRUPT_WIDTH
    return [round(c * scale) for c in _GRADUAL_CENTRES], _GRADUAL_WIDTH_FRACTION * PAPER_N * scale


def drift_ramp(name: str, n: int | None = PAPER_N) -> float:
    """Records one drift of stream ``name`` takes at length ``n`` (its sigmoid's width: 50 for
    the abrupt streams, 5 % of ``n`` for the gradual ones; 0 for RandomRBF, whose drift is
    continuous and has no positions)."""
    if not name.startswith(("LED", "SEA")):
        return 0.0
    return _drift(name.endswith("a"), n)[1]


def _sea_variant(function: int) -> int:
    """River's SEA variant for MOA's SEA function (checked against the thresholds)."""
    threshold = _SEA_THRESHOLDS[function - 1]
    return next(v for v, th in _RIVER_SEA_THRESHOLDS.items() if th == threshold)


def _sea_concept(function: int, seed: int) -> synth.SEA:
    return synth.SEA(variant=_sea_variant(function), noise=_NOISE, seed=seed)


def _led_concept(n_drift_features: int, seed: int) -> Iterator[tuple[dict[int, int], int]]:
    """MOA's LEDGeneratorDrift: a uniform digit, its 7 segments each flipped with probability
    exactly `_NOISE`, and 17 random bits; segment ``i`` and random bit ``7 + i`` trade places
    for ``i < n_drift_features``.

    MOA fixes where the swapped segments go, so the paper's concepts (1, 3, 5, 7 swapped) nest:
    each drift moves two more segments and keeps the others where they were. River's LEDDrift
    draws the positions per concept (seeded), so there each drift reshuffles every swapped
    segment, a far harsher change, and its noise test ``0.01 + random() <= p`` flips 9 %, not 10 %.
    """
    rng = random.Random(seed)
    position = list(range(_LED_FEATURES))
    for i in range(n_drift_features):
        position[i], position[_LED_SEGMENTS + i] = _LED_SEGMENTS + i, i
    while True:
        digit = rng.randrange(len(_LED_DIGITS))
        x = dict.fromkeys(range(_LED_FEATURES), 0)   # keys in feature order
        for i, lit in enumerate(_LED_DIGITS[digit]):
            x[position[i]] = lit ^ (rng.random() < _NOISE)
        for i in range(_LED_SEGMENTS, _LED_FEATURES):
            x[position[i]] = rng.randrange(2)
        yield x, digit


def _drifting(
    name: str, concept: Callable[[int, int], Iterable[tuple[dict[Any, Any], Any]]],
    params: Sequence[int], n_features: int, n_classes: int, abrupt: bool,
) -> Callable[[int | None, int], SyntheticStream]:
    """Factory of a stream of ``concept(param, seed)`` for each param, drifting from one to the
    next at the paper's (abrupt or gradual) positions."""
    def factory(n: int | None = PAPER_N, seed: int = 0) -> SyntheticStream:
        centres, width = _drift(abrupt, n)
        *concept_seeds, choice_seed = _seeds(seed, len(params) + 1)

        def examples() -> Iterator[Example]:
            concepts = [_named(iter(concept(p, s))) for p, s in zip(params, concept_seeds)]
            return _compose(concepts, centres, width, choice_seed)

        names = [str(i) for i in range(n_features)]
        return SyntheticStream(name, n, seed, names, n_classes, centres, examples)

    return factory


def _rbf(name: str, change_speed: float) -> Callable[[int | None, int], SyntheticStream]:
    def factory(n: int | None = PAPER_N, seed: int = 0) -> SyntheticStream:
        model_seed, sample_seed = _seeds(seed, 2)

        def examples() -> Iterator[Example]:
            return _named(iter(synth.RandomRBFDrift(
                seed_model=model_seed, seed_sample=sample_seed, n_classes=2, n_features=10,
                n_centroids=50, change_speed=change_speed, n_drift_centroids=50,
            )))

        return SyntheticStream(name, n, seed, [str(i) for i in range(10)], 2, [], examples)

    return factory


STREAMS: dict[str, Callable[[int | None, int], SyntheticStream]] = {
    "LEDa": _drifting("LEDa", _led_concept, _LED_DRIFT_FEATURES, _LED_FEATURES,
                      len(_LED_DIGITS), abrupt=True),
    "LEDg": _drifting("LEDg", _led_concept, _LED_DRIFT_FEATURES, _LED_FEATURES,
                      len(_LED_DIGITS), abrupt=False),
    "SEAa": _drifting("SEAa", _sea_concept, _SEA_FUNCTIONS, 3, 2, abrupt=True),
    "SEAg": _drifting("SEAg", _sea_concept, _SEA_FUNCTIONS, 3, 2, abrupt=False),
    "RBFm": _rbf("RBFm", change_speed=1e-4),
    "RBFf": _rbf("RBFf", change_speed=1e-3),
}
"""The paper's synthetic streams by name: ``factory(n, seed)``; ``n`` defaults to 1,000,000."""
