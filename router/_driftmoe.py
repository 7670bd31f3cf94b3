"""The DriftMoE router: an MLP co-trained with the experts on their correctness mask."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from experts._features import FeatureVectorizer
from experts._mlp import softmax
from experts._nn import DenseNet


class DriftMoERouter:
    """MLP ``in -> hidden[0] -> ReLU -> ... -> n_experts`` logits, as in DriftMoE (Aspis et al.,
    2025): Xavier-uniform weights, zero biases, dropout ``dropout`` after each hidden ReLU in
    training steps only, Adam (``lr``, ``betas``, ``eps``, no weight decay), loss BCE-with-logits
    (mean over records and experts) against the multi-hot correctness mask.

    ``weights(x) = softmax(logits(x) / temperature)``. ``learn(x, mask)`` buffers the record and
    takes one Adam step on the whole buffer every ``batch_size`` records (``batch_size=1``: every
    record, as MoE-Task). Parameters change only at a step, so recomputing the batch's forward
    pass at the step equals the paper's buffered logits.

    Features are raw by default (``standardize=False``, as the paper); new features add
    zero-initialised input rows, so outputs for earlier records are unchanged. ``n_experts`` is
    the initial number of outputs; afterwards the ``n_experts`` property tracks
    ``add_expert`` / ``remove_expert``. Deterministic given ``seed``; picklable.
    """

    def __init__(
        self,
        n_experts: int = 12,
        hidden: Sequence[int] = (256, 128),
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        dropout: float = 0.2,
        temperature: float = 0.8,
        batch_size: int = 256,
        standardize: bool = False,
        seed: int = 0,
    ) -> None:
        if n_experts < 0 or batch_size < 1 or temperature <= 0:
            raise ValueError("need n_experts >= 0, batch_size >= 1 and temperature > 0")
        self.hidden = tuple(hidden)
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.dropout = dropout
        self.temperature = temperature
        self.batch_size = batch_size
        self.standardize = standardize
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._vec = FeatureVectorizer(standardize=standardize)
        # Built with 0 inputs (uniform weights until the first step); the first step sizes and
        # Xavier-initialises the input layer, later new features add zero rows.
        self._net = DenseNet(
            [0, *self.hidden, n_experts], self._rng, lr, "adam", betas, eps, dropout
        )
        self._buffer_x: list[np.ndarray] = []
        self._buffer_mask: list[np.ndarray] = []
        self._buffer_seen: list[np.ndarray] = []
        self._n_steps = 0

    @property
    def n_experts(self) -> int:
        """Current number of outputs."""
        return self._net.n_outputs

    @property
    def n_steps(self) -> int:
        """Optimiser steps taken so far."""
        return self._n_steps

    def logits(self, x: dict[str, Any]) -> np.ndarray:
        """Router logits, shape ``(n_experts,)`` (no dropout)."""
        v = self._vec.transform(x)[: self._net.n_inputs]    # unseen features have zero weight
        return self._net.forward_one(v)

    def weights(self, x: dict[str, Any]) -> np.ndarray:
        """Softmax of ``logits(x) / temperature``: sums to 1."""
        return softmax(self.logits(x) / self.temperature)

    def learn(self, x: dict[str, Any], correct_mask: np.ndarray,
              observed: np.ndarray | None = None) -> None:
        """Buffers ``(x, correct_mask)``; steps once the buffer holds ``batch_size`` records.

        ``observed`` (0/1 per expert, default all 1) marks the experts that were actually asked
        about this record: the loss covers only those outputs, so a caller that consults a few
        experts per record trains the router on what it saw, not on guesses for the rest."""
        mask = np.asarray(correct_mask, dtype=float)
        if mask.shape != (self.n_experts,):
            raise ValueError(f"mask shape {mask.shape} != ({self.n_experts},)")
        seen = np.ones(self.n_experts) if observed is None else np.asarray(observed, dtype=float)
        if seen.shape != mask.shape:
            raise ValueError(f"observed shape {seen.shape} != mask shape {mask.shape}")
        self._buffer_x.append(self._vec.transform(x, learn=True))
        self._buffer_mask.append(mask.copy())
        self._buffer_seen.append(seen.copy())
        if len(self._buffer_x) >= self.batch_size:
            self._step()

    def _step(self) -> None:
        dim = self._vec.dim
        self._net.grow_inputs(dim, self._rng)
        X = np.zeros((len(self._buffer_x), dim))
        for r, row in enumerate(self._buffer_x):
            X[r, : len(row)] = row
        M = np.stack(self._buffer_mask)
        seen = np.stack(self._buffer_seen)
        n_seen = seen.sum()
        self._buffer_x.clear()
        self._buffer_mask.clear()
        self._buffer_seen.clear()
        if M.shape[1] and n_seen:
            # d mean(BCE-with-logits over observed outputs) / d z
            #   = (sigmoid(z) - mask) * seen / n_seen
            self._net.train_step(X, lambda z: (_sigmoid(z) - M) * seen / n_seen, self._rng)
        self._n_steps += 1

    def add_expert(self) -> None:
        """Appends an output (Xavier-initialised column, zero bias); records already buffered do
        not train it (it was not observed on them)."""
        self._net.add_output(self._rng)
        self._buffer_mask[:] = [np.append(m, 0.0) for m in self._buffer_mask]
        self._buffer_seen[:] = [np.append(m, 0.0) for m in self._buffer_seen]

    def remove_expert(self, i: int) -> None:
        """Deletes output ``i`` from the weights, the Adam moments and the buffered masks."""
        if not 0 <= i < self.n_experts:
            raise IndexError(f"no expert {i} among {self.n_experts}")
        self._net.remove_output(i)
        self._buffer_mask[:] = [np.delete(m, i) for m in self._buffer_mask]
        self._buffer_seen[:] = [np.delete(m, i) for m in self._buffer_seen]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))     # overflow-free logistic
