"""An online softmax MLP expert in numpy."""
from __future__ import annotations

import numpy as np
from river import base

from ._base import Features, Label
from ._features import FeatureVectorizer
from ._nn import DenseNet


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted for numerical safety."""
    if z.ndim == 1:   # the per-record path: reductions without axis handling are ~3 us faster
        e = np.exp(z - z.max())
        return e / e.sum()
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class MLPExpert(base.Classifier):
    """One-hidden-layer ReLU network with a softmax output, trained one record at a time.

    Classes are discovered as they appear (each new class appends an output unit); new features
    add zero-initialised input rows. Inputs are standardised online by default. Weights are
    Xavier-uniform from ``seed``, so two experts with the same settings start identical.

    Parameters: ``hidden`` units; ``lr`` learning rate; ``optimizer`` ``"adam"`` or ``"sgd"``;
    ``standardize`` inputs with running mean/variance; ``seed`` for the initial weights.
    """

    _multiclass = True   # River: one softmax output per class seen

    def __init__(
        self,
        hidden: int = 32,
        lr: float = 5e-3,
        optimizer: str = "adam",
        standardize: bool = True,
        seed: int = 0,
    ) -> None:
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', not {optimizer!r}")
        self.hidden = hidden
        self.lr = lr
        self.optimizer = optimizer
        self.standardize = standardize
        self.seed = seed
        self._vec = FeatureVectorizer(standardize=standardize)
        self._rng = np.random.default_rng(seed)
        # 0 inputs and 0 outputs: the first record sizes the input, each new class adds an output.
        self._net = DenseNet([0, hidden, 0], self._rng, lr, optimizer)
        self._classes: list[Label] = []
        self._class_index: dict[Label, int] = {}

    def predict_proba_one(self, x: Features) -> dict[Label, float]:
        """Class probabilities; ``{}`` before the first ``learn_one``."""
        if not self._classes:
            return {}
        v = self._vec.transform(x)[: self._net.n_inputs]   # unseen features have zero weight
        p = softmax(self._net.forward_one(v))
        return dict(zip(self._classes, p.tolist()))

    def learn_one(self, x: Features, y: Label, w: float = 1.0) -> None:
        """One gradient step on the cross-entropy of ``(x, y)``, scaled by weight ``w``."""
        v = self._vec.transform(x, learn=True)
        self._net.grow_inputs(len(v), self._rng)
        if y not in self._class_index:
            self._class_index[y] = len(self._classes)
            self._classes.append(y)
            self._net.add_output(self._rng)
        target = self._class_index[y]

        def grad(out: np.ndarray) -> np.ndarray:
            g = softmax(out)
            g[:, target] -= 1.0
            return w * g

        self._net.train_step(v[None, :], grad)

    def memory_bytes(self) -> int:
        """Bytes held by the network, its optimiser state and the input statistics (estimate)."""
        return self._net.nbytes() + 32 * self._vec.dim   # 4 float64 statistics per input slot
