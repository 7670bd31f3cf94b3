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
        self._pack()

    def _params(self) -> list[np.ndarray]:
        return [*self._W, *self._b]

    def _pack(self) -> None:
        """Lay the parameters out in one flat array (and each Adam moment in another), the
        lists holding views into it, so an optimiser step is one set of vector operations
        instead of one per weight and bias (at batch size 1 the per-call cost dominates).
        Called after every change of shape."""
        params = self._params()
        self._flat = np.concatenate([p.ravel() for p in params])
        views = self._views(self._flat, params)
        n = len(self._W)
        self._W, self._b = views[:n], views[n:]
        if self._mom:
            self._mom_flat = np.concatenate([m.ravel() for m in self._mom])
            self._sq_flat = np.concatenate([v.ravel() for v in self._sq])
            self._mom = self._views(self._mom_flat, params)
            self._sq = self._views(self._sq_flat, params)

    @staticmethod
    def _views(flat: np.ndarray, like: list[np.ndarray]) -> list[np.ndarray]:
        """``flat`` cut into consecutive views shaped as the arrays of ``like``."""
        views, start = [], 0
        for p in like:
            views.append(flat[start:start + p.size].reshape(p.shape))
            start += p.size
        return views

    def __getstate__(self) -> dict:
        # pickle keeps views as copies; store the shaped lists and re-pack on load
        state = self.__dict__.copy()
        for key in ("_flat", "_mom_flat", "_sq_flat"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pack()

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
        g = np.concatenate([g.ravel() for g in grads])   # laid out as `_flat`
        if self.optimizer == "sgd":
            g *= self.lr
            self._flat -= g
            return
        self._t += 1
        b1, b2 = self.betas
        step = self.lr * np.sqrt(1.0 - b2**self._t) / (1.0 - b1**self._t)
        m, v = self._mom_flat, self._sq_flat
        # in place, with ``g`` (this step's own array) as the one scratch buffer
        m *= b1
        g *= 1.0 - b1
        m += g
        g *= g * ((1.0 - b2) / (1.0 - b1) ** 2)
        v *= b2
        v += g
        np.sqrt(v, out=g)
        g += self.eps
        np.divide(m, g, out=g)
        g *= step
        self._flat -= g

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
        self._pack()

    def add_output(self, rng: np.random.Generator) -> None:
        """Appends one output: a Xavier column for the widened layer, zero bias and moments."""
        last = len(self._W) - 1
        W = self._W[last]
        self._W[last] = np.hstack([W, xavier_uniform(rng, W.shape[0], W.shape[1] + 1, 1)])
        self._b[last] = np.append(self._b[last], 0.0)
        for moments in (self._mom, self._sq) if self._mom else ():
            moments[last] = np.hstack([moments[last], np.zeros((W.shape[0], 1))])
            moments[-1] = np.append(moments[-1], 0.0)
        self._pack()

    def remove_output(self, i: int) -> None:
        """Deletes output unit ``i`` from the last layer, its bias and their moments."""
        last = len(self._W) - 1
        self._W[-1] = np.delete(self._W[-1], i, axis=1)
        self._b[-1] = np.delete(self._b[-1], i)
        for moments in (self._mom, self._sq) if self._mom else ():
            moments[last] = np.delete(moments[last], i, axis=1)
            moments[-1] = np.delete(moments[-1], i)
        self._pack()
