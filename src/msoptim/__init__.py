"""msoptim: MindSpore's optimizer and learning-rate system, rebuilt for PyTorch, exact and fast.

Everything public is importable from here; names and argument orders are MindSpore's.
"""

from __future__ import annotations

from msoptim.callbacks import LearningRateScheduler
from msoptim.errors import (
    DuplicateParameterError,
    LearningRateTableExhaustedError,
    UnknownGroupKeyError,
    UnsupportedLrKindError,
)
from msoptim.lr_functions import (
    cosine_decay_lr,
    exponential_decay_lr,
    inverse_decay_lr,
    natural_exp_decay_lr,
    piecewise_constant_lr,
    polynomial_decay_lr,
    warmup_lr,
)
from msoptim.lr_sources import assign
from msoptim.optimizer import Optimizer
from msoptim.optimizers.momentum import Momentum
from msoptim.optimizers.sgd import SGD
from msoptim.params import trainable_params
from msoptim.schedules import (
    CosineDecayLR,
    ExponentialDecayLR,
    InverseDecayLR,
    LearningRateSchedule,
    NaturalExpDecayLR,
    PolynomialDecayLR,
    WarmUpLR,
)

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "CosineDecayLR",
    "DuplicateParameterError",
    "ExponentialDecayLR",
    "InverseDecayLR",
    "LearningRateSchedule",
    "LearningRateScheduler",
    "LearningRateTableExhaustedError",
    "Momentum",
    "NaturalExpDecayLR",
    "Optimizer",
    "PolynomialDecayLR",
    "UnknownGroupKeyError",
    "UnsupportedLrKindError",
    "WarmUpLR",
    "__version__",
    "assign",
    "cosine_decay_lr",
    "exponential_decay_lr",
    "inverse_decay_lr",
    "natural_exp_decay_lr",
    "piecewise_constant_lr",
    "polynomial_decay_lr",
    "trainable_params",
    "warmup_lr",
]
