"""A small numpy ReLU network with Adam or SGD whose input and output layers can grow.

Shared by the neural expert and the DriftMoE router: per-record torch calls cost more than the
maths at these sizes, so both do their forward and backward passes here in numpy.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def xavier_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, cols: int) -> np.ndarray:
    """A (fan_in, cols) block drawn from U(-a, a), a = sqrt(6 / (fan_in + fan_out))."""
    a = np.sqrt(6.0 / max(fan_in + fan_out, 1))
    return rng.uniform(-a, a, size=(fan_in, cols))


class DenseNet:
    """Fully connected net: ``sizes[0] -> ... -> sizes[-1]`` with ReLU between layers, linear
    output, Xavier-uniform weights and zero biases drawn from ``rng``.

    ``optimizer`` is ``"adam"`` (moments per parameter, bias-corrected) or ``"sgd"``.
    ``dropout`` (probability of zeroing a hidden unit, inverted scaling) applies in
    ``train_step`` only; ``forward_one`` is the deterministic inference path.
    ``sizes[0] = 0`` defers the first layer until ``grow_inputs`` learns the input size.
    Growing the input adds zero rows to the first weight matrix (earlier outputs unchanged);
    adding an output adds a Xavier-initialised column; removing one deletes it everywhere.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        rng: np.random.Generator,
        lr: float,
        optimizer: str = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        dropout: float = 0.0,
    ) -> None:
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', not {optimizer!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {dropout}")
        self.lr = lr
        self.optimizer = optimizer
        self.betas = betas
        self.eps = eps
        self.dropout = dropout
        self._W = [xavier_uniform(rng, a, b, b) for a, b in zip(sizes[:-1], sizes[1:])]
        self._b = [np.zeros(b) for b in sizes[1:]]
        self._mom = [np.zeros_like(p) for p in self._params()] if optimizer == "adam" else []
        self._sq = [np.zeros_like(p) for p in self._params()] if optimizer == "adam" else []
        self._t = 0

    def _params(self) -> list[np.ndarray]:
        return [*self._W, *self._b]

    @property
    def n_inputs(self) -> int:
        return self._W[0].shape[0]

    @property
    def n_outputs(self) -> int:
        return self._W[-1].shape[1]

    def nbytes(self) -> int:
        """Bytes held by weights, biases and optimiser moments."""
        return sum(p.nbytes for p in (*self._params(), *self._mom, *self._sq))

    def forward_one(self, x: np.ndarray) -> np.ndarray:
        """Output vector for one input vector (no dropout).

        The output layer is an einsum, not BLAS: each output then sums its column in the same
        order whatever the layer's width, so adding or removing an output leaves the others
        bit-identical (with two or more outputs; BLAS changes kernels with the width).
        """
        h = x
        for W, b in zip(self._W[:-1], self._b[:-1]):
            h = h @ W
            h += b
            np.maximum(h, 0.0, out=h)
        out = np.einsum("i,ij->j", h, self._W[-1])
        out += self._b[-1]
        return out

    def train_step(
        self,
        X: np.ndarray,
        grad_fn: Callable[[np.ndarray], np.ndarray],
        rng: np.random.Generator | None = None,
    ) -> None:
        """One optimiser step on the batch ``X`` (n, n_inputs).

        ``grad_fn(outputs) -> d loss / d outputs`` (same shape) defines the loss. Dropout masks
        are drawn from ``rng`` (required when ``dropout > 0``).
        """
        acts = [X]
        h = X
        last = len(self._W) - 1
        keep = 1.0 - self.dropout
        for k, (W, b) in enumerate(zip(self._W, self._b)):
            h = h @ W + b
            if k < last:
                np.maximum(h, 0.0, out=h)
                if self.dropout:
                    h *= (rng.random(h.shape) < keep) / keep
            acts.append(h)
        g = grad_fn(h)
        gW: list[np.ndarray] = [np.empty(0)] * len(self._W)
        gb: list[np.ndarray] = [np.empty(0)] * len(self._W)
        for k in range(last, -1, -1):
            gW[k] = acts[k].T @ g
            gb[k] = g.sum(axis=0)
            if k:
                # acts[k] is zero exactly where ReLU or dropout cut the unit, so the mask is
                # acts[k] > 0; the dropout scale 1/keep also multiplies the gradient.
                g = (g @ self._W[k].T) * (acts[k] > 0)
                if self.dropout:
                    g /= keep
        self._apply([*gW, *gb])

    def _apply(self, grads: list[np.ndarray]) -> None:
        params = self._params()
        if self.optimizer == "sgd":
            for p, g in zip(params, grads):
                p -= self.lr * g
            return
        self._t += 1
        b1, b2 = self.betas
        step = self.lr * np.sqrt(1.0 - b2**self._t) / (1.0 - b1**self._t)
        # In place, one scratch array per parameter: at batch size 1 this update dominates.
        for p, g, m, v in zip(params, grads, self._mom, self._sq):
            m *= b1
            g *= 1.0 - b1          # the gradients are this step's own temporaries
            m += g
            g *= g * ((1.0 - b2) / (1.0 - b1) ** 2)
            v *= b2
            v += g
            np.sqrt(v, out=g)
            g += self.eps
            np.divide(m, g, out=g)
            g *= step
            p -= g

    def grow_inputs(self, n_inputs: int, rng: np.random.Generator) -> None:
        """Widens the input to ``n_inputs``. A net built with 0 inputs (input size not known
        yet) gets its first layer Xavier-initialised from ``rng`` here; later growth pads zero
        rows (and zero moments), which leaves every earlier output unchanged."""
        extra = n_inputs - self.n_inputs
        if extra <= 0:
            return
        W = self._W[0]
        if not W.shape[0]:
            self._W[0] = xavier_uniform(rng, n_inputs, W.shape[1], W.shape[1])
        else:
            self._W[0] = np.vstack([W, np.zeros((extra, W.shape[1]))])
        for moments in (self._mom, self._sq) if self._mom else ():
            moments[0] = np.vstack([moments[0], np.zeros((extra, W.shape[1]))])

    def add_output(self, rng: np.random.Generator) -> None:
        """Appends one output: a Xavier column for the widened layer, zero bias and moments."""
        last = len(self._W) - 1
        W = self._W[last]
        self._W[last] = np.hstack([W, xavier_uniform(rng, W.shape[0], W.shape[1] + 1, 1)])
        self._b[last] = np.append(self._b[last], 0.0)
        for moments in (self._mom, self._sq) if self._mom else ():
            moments[last] = np.hstack([moments[last], np.zeros((W.shape[0], 1))])
            moments[-1] = np.append(moments[-1], 0.0)

    def remove_output(self, i: int) -> None:
        """Deletes output unit ``i`` from the last layer, its bias and their moments."""
        last = len(self._W) - 1
        self._W[-1] = np.delete(self._W[-1], i, axis=1)
        self._b[-1] = np.delete(self._b[-1], i)
        for moments in (self._mom, self._sq) if self._mom else ():
            moments[last] = np.delete(moments[last], i, axis=1)
            moments[-1] = np.delete(moments[-1], i)
