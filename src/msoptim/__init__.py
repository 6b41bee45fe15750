"""msoptim: MindSpore's optimizer and learning-rate system, rebuilt for PyTorch, exact and fast.

Everything public is importable from here; names and argument orders are MindSpore's.
"""

from __future__ import annotations

from msoptim.callbacks import LearningRateScheduler
from msoptim.checkpoint import (
    load_mindspore_checkpoint,
    mindspore_to_torch,
    save_mindspore_checkpoint,
    torch_to_mindspore,
)
from msoptim.errors import (
    DuplicateParameterError,
    LearningRateEntryError,
    LearningRateTableExhaustedError,
    NestedLearningRateError,
    NotAParameterError,
    OrderParamsStringError,
    PerGroupArgumentError,
    UnknownGroupKeyError,
    UnsupportedLrKindError,
)
from msoptim.kernels._fused import exact_compile_options
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
from msoptim.optimizers.adadelta import Adadelta
from msoptim.optimizers.adafactor import AdaFactor
from msoptim.optimizers.adagrad import Adagrad
from msoptim.optimizers.adam import Adam, AdamOffload, LazyAdam
from msoptim.optimizers.adam_weight_decay import AdamWeightDecay
from msoptim.optimizers.adamax import AdaMax
from msoptim.optimizers.asgd import ASGD
from msoptim.optimizers.ftrl import FTRL
from msoptim.optimizers.lamb import Lamb
from msoptim.optimizers.lars import LARS
from msoptim.optimizers.momentum import Momentum
from msoptim.optimizers.proximal_adagrad import ProximalAdagrad
from msoptim.optimizers.rmsprop import RMSProp
from msoptim.optimizers.rprop import Rprop
from msoptim.optimizers.sgd import SGD
from msoptim.params import trainable_params
from msoptim.plateau import ReduceLROnPlateau
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
    "ASGD",
    "FTRL",
    "LARS",
    "SGD",
    "AdaFactor",
    "AdaMax",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamOffload",
    "AdamWeightDecay",
    "CosineDecayLR",
    "DuplicateParameterError",
    "ExponentialDecayLR",
    "InverseDecayLR",
    "Lamb",
    "LazyAdam",
    "LearningRateEntryError",
    "LearningRateSchedule",
    "LearningRateScheduler",
    "LearningRateTableExhaustedError",
    "Momentum",
    "NaturalExpDecayLR",
    "NestedLearningRateError",
    "NotAParameterError",
    "Optimizer",
    "OrderParamsStringError",
    "PerGroupArgumentError",
    "PolynomialDecayLR",
    "ProximalAdagrad",
    "RMSProp",
    "ReduceLROnPlateau",
    "Rprop",
    "UnknownGroupKeyError",
    "UnsupportedLrKindError",
    "WarmUpLR",
    "__version__",
    "assign",
    "cosine_decay_lr",
    "exact_compile_options",
    "exponential_decay_lr",
    "inverse_decay_lr",
    "load_mindspore_checkpoint",
    "mindspore_to_torch",
    "natural_exp_decay_lr",
    "piecewise_constant_lr",
    "polynomial_decay_lr",
    "save_mindspore_checkpoint",
    "torch_to_mindspore",
    "trainable_params",
    "warmup_lr",
]
