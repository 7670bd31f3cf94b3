"""The compiled detectors against their Python / River originals, and the compiled RNG."""
from __future__ import annotations

import math
import random

import numpy as np
from river import drift

from detectors import RBOCPD, MultinomialRBOCPD
from detectors._compiled import adwin_update, new_adwin_stack, new_rbocpd, rbocpd_update
from experts._compiled_rng import new_rng, rng_poisson, rng_uniform


def _errors(n: int = 6000, seed: int = 3) -> list[int]:
    """0/1 errors whose rate steps 0.1 -> 0.4 -> 0.15 at 2,000 and 4,000."""
    rng = random.Random(seed)
    return [int(rng.random() < (0.1 if i < 2000 else 0.4 if i < 4000 else 0.15))
            for i in range(n)]


def test_compiled_adwin_fires_where_rivers_does():
    river, stack = drift.ADWIN(), new_adwin_stack(2)
    ours, theirs = [], []
    for i, e in enumerate(_errors()):
        river.update(e)
        theirs += [i] if river.drift_detected else []
        ours += [i] if adwin_update(stack, 1, float(e), 0.002) else []
    assert ours == theirs and len(ours) >= 2


def test_compiled_rbocpd_fires_where_the_python_one_does():
    python, state = RBOCPD(), new_rbocpd(2)
    ours, theirs = [], []
    for i, e in enumerate(_errors()):
        python.update(e)
        theirs += [i] if python.drift_detected else []
        ours += [i] if rbocpd_update(state, e, False, math.log(0.01)) else []
    assert ours == theirs and len(ours) >= 2


def test_compiled_multinomial_rbocpd_fires_where_the_python_one_does():
    rng = random.Random(5)
    labels = [rng.choice([0, 1, 2] if i < 3000 else [0, 2, 2, 2, 3]) for i in range(6000)]
    python, state = MultinomialRBOCPD(), new_rbocpd(4)
    ours, theirs = [], []
    for i, y in enumerate(labels):
        python.update(y)
        theirs += [i] if python.drift_detected else []
        ours += [i] if rbocpd_update(state, y, True, math.log(0.01)) else []
    assert ours == theirs and len(ours) >= 1


def test_rng_is_seeded_uniform_and_poisson():
    a, b = new_rng(7), new_rng(7)
    draws = [rng_uniform(a) for _ in range(20_000)]
    assert draws == [rng_uniform(b) for _ in range(20_000)]
    assert 0.0 <= min(draws) and max(draws) < 1.0 and abs(np.mean(draws) - 0.5) < 0.01
    counts = [rng_poisson(a, 6.0) for _ in range(20_000)]
    assert abs(np.mean(counts) - 6.0) < 0.1 and abs(np.var(counts) - 6.0) < 0.3
