"""Of several mistakes in one constructor call, the one MindSpore 2.10 reports comes first.

Every row was run through MindSpore 2.10.0 (CPU) in this project's recording environment; the
exception type is MindSpore's and the argument named is the one its message names. The order:

1. the parameter list (None, empty, not iterable, a mix of parameters and group dicts, an item
   that is neither): ``Optimizer.__init__``'s first check, before the loss scale and the lr;
2. the loss scale, the lr, the groups, the weight decay (the base class);
3. the optimizer's own arguments (Adam: its ``**kwargs`` first; LazyAdam: the betas' and eps'
   types, then its float check of ``weight_decay``, then the ranges);
4. msoptim's own refusals of values MindSpore takes (a NaN beta, an infinite momentum, ``None`` or
   ``'0.2'`` in an lr list): last, so alone they are still refused.

The arguments' recorded cases (several corrupted arguments a call) are replayed by
``test_golden.py`` from ``tests/golden_recorded/arg_error.json``; the parameter-list rows are here
because the golden schema always passes the six standard parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import msoptim
from msoptim._validate import check_float_in_range, refusals_later

NAN, INF = math.nan, math.inf


def _params() -> list[nn.Parameter]:
    return [nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(3))]


BROKEN_PARAMETER_LISTS: list[tuple[str, Callable[[list], Any], type[Exception], str]] = [
    ("None", lambda p: None, ValueError, r"'params' must not be None"),
    ("empty", lambda p: [], ValueError, r"'params' must not be empty"),
    ("an int", lambda p: 3, TypeError, r"'params' must be an iterable"),
    ("one Parameter", lambda p: p[0], TypeError, r"'params' must be a list of parameters"),
    ("one group dict", lambda p: {"params": p}, TypeError, r"'params' must be a list"),
    ("a mix", lambda p: [p[0], {"params": p[1:]}], TypeError, r"not a mix"),
    ("an int item", lambda p: [3, p[0]], TypeError, r"params\[0\] must be a torch.nn.Parameter"),
]

OTHER_MISTAKES: list[tuple[str, Callable[[Any], Any]]] = [
    ("loss_scale", lambda params: msoptim.Momentum(params, 0.1, 0.9, loss_scale=-1.0)),
    ("learning_rate", lambda params: msoptim.Momentum(params, "x", 0.9)),
    ("momentum", lambda params: msoptim.Momentum(params, 0.1, -1.0)),
    ("weight_decay", lambda params: msoptim.AdamWeightDecay(params, weight_decay=-1.0)),
    ("FTRL's lr list", lambda params: msoptim.FTRL(params, learning_rate=[0.1, 0.2])),
    ("Rprop's etas", lambda params: msoptim.Rprop(params, etas=(2.0, 1.0))),
]


@pytest.mark.parametrize(("other", "build"), OTHER_MISTAKES, ids=[r[0] for r in OTHER_MISTAKES])
@pytest.mark.parametrize(
    ("kind", "make", "error", "match"),
    BROKEN_PARAMETER_LISTS,
    ids=[r[0] for r in BROKEN_PARAMETER_LISTS],
)
def test_the_parameter_list_is_checked_first(
    kind: str, make: Callable, error: type[Exception], match: str, other: str, build: Callable
) -> None:
    with pytest.raises(error, match=match):
        build(make(_params()))


def test_a_generator_of_parameters_is_read_once() -> None:
    params = _params()
    opt = msoptim.Momentum((p for p in params), 0.1, 0.9)
    assert list(opt.parameters) == params


def _group_lr(lr: list) -> list[dict]:
    return [{"params": _params(), "lr": lr}]


ORDER_CASES: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    # the base class before the optimizer's own arguments
    (
        "Adam: loss_scale before **kwargs",
        lambda: msoptim.Adam(_params(), loss_scale=-1.0, lr=1),
        ValueError,
        r"'loss_scale'",
    ),
    (
        "Adam: **kwargs before the betas",
        lambda: msoptim.Adam(_params(), beta1=2.0, lr=1),
        KeyError,
        r"unexpected keyword argument\(s\) 'lr'",
    ),
    (
        "LazyAdam: eps's type before weight_decay's",
        lambda: msoptim.LazyAdam(_params(), weight_decay=0, eps=0),
        TypeError,
        r"'eps'",
    ),
    (
        "LazyAdam: weight_decay's type before the betas' ranges",
        lambda: msoptim.LazyAdam(_params(), beta1=2.0, weight_decay=1),
        TypeError,
        r"'weight_decay'",
    ),
    (
        "FTRL: use_locking before l1=inf (MindSpore's kernel refuses it)",
        lambda: msoptim.FTRL(_params(), l1=INF, use_locking=0),
        TypeError,
        r"'use_locking'",
    ),
    # msoptim's own refusals last
    (
        "Momentum: use_nesterov before momentum=nan",
        lambda: msoptim.Momentum(_params(), 0.1, NAN, use_nesterov=[False]),
        TypeError,
        r"'use_nesterov'",
    ),
    (
        "SGD: dampening before momentum=inf",
        lambda: msoptim.SGD(_params(), momentum=INF, dampening=[0.0]),
        TypeError,
        r"'dampening'",
    ),
    (
        "Adam: use_amsgrad before beta1=nan",
        lambda: msoptim.Adam(_params(), beta1=NAN, use_amsgrad="True"),
        TypeError,
        r"'use_amsgrad'",
    ),
    (
        "FTRL: use_locking before initial_accum=inf",
        lambda: msoptim.FTRL(_params(), initial_accum=INF, use_locking=[False]),
        TypeError,
        r"'use_locking'",
    ),
    (
        "ASGD: t0's type before lambd=nan",
        lambda: msoptim.ASGD(_params(), lambd=NAN, t0=1),
        TypeError,
        r"'t0'",
    ),
    (
        "AdaFactor: scale_parameter before decay_rate=nan",
        lambda: msoptim.AdaFactor(_params(), decay_rate=NAN, scale_parameter=1),
        TypeError,
        r"'scale_parameter'",
    ),
    (
        "Rprop: min_step_sizes' type before etaplus=nan",
        lambda: msoptim.Rprop(_params(), etas=(0.5, NAN), step_sizes=(1, 50.0)),
        TypeError,
        r"min_step_sizes",
    ),
    (
        "Momentum: use_nesterov before None in the lr list",
        lambda: msoptim.Momentum(_params(), [0.1, None], 0.9, use_nesterov=1),
        TypeError,
        r"'use_nesterov'",
    ),
    (
        "Momentum: use_nesterov before a group lr list's None",
        lambda: msoptim.Momentum(_group_lr([0.1, None]), 0.1, 0.9, use_nesterov=1),
        TypeError,
        r"'use_nesterov'",
    ),
    (
        "FTRL: its dynamic-lr refusal before the list's '0.2'",
        lambda: msoptim.FTRL(_params(), learning_rate=[0.1, "0.2"]),
        ValueError,
        r"not supported in FTRL",
    ),
    # ... which MindSpore refuses at once where it cannot read the entry
    (
        "Momentum: a string that is no number, before use_nesterov",
        lambda: msoptim.Momentum(_params(), [0.1, "a"], 0.9, use_nesterov=1),
        ValueError,
        r"item 1 is 'a'",
    ),
    # alone, msoptim's own refusals still refuse
    (
        "Momentum: momentum=nan alone",
        lambda: msoptim.Momentum(_params(), 0.1, NAN),
        ValueError,
        r"'momentum'",
    ),
    ("FTRL: l1=inf alone", lambda: msoptim.FTRL(_params(), l1=INF), ValueError, r"'l1'"),
    ("Adam: beta1=nan alone", lambda: msoptim.Adam(_params(), beta1=NAN), ValueError, r"'beta1'"),
    (
        "Momentum: None in the lr list alone",
        lambda: msoptim.Momentum(_params(), [0.1, None], 0.9),
        msoptim.LearningRateEntryError,
        r"'learning_rate' must be a list of floats, but item 1 is None",
    ),
    (
        "Momentum: None in a group's lr list alone",
        lambda: msoptim.Momentum(_group_lr([0.1, None]), 0.1, 0.9),
        msoptim.LearningRateEntryError,
        r"param_groups\[0\]\['lr'\] must be a list of floats",
    ),
    (
        "Momentum: a NaN tensor lr after momentum's type",
        lambda: msoptim.Momentum(_params(), torch.tensor(NAN), 1),
        TypeError,
        r"'momentum'",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "match"), [r[1:] for r in ORDER_CASES], ids=[r[0] for r in ORDER_CASES]
)
def test_the_mistake_mindspore_reports_comes_first(
    call: Callable[[], Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call()


def test_group_lr_tables_are_compared_with_the_first_non_empty_one() -> None:
    """MindSpore takes an empty table before a longer one (the first step then raises), not after."""
    opt = msoptim.Momentum(
        [{"params": _params(), "lr": []}, {"params": _params(), "lr": [0.1, 0.2, 0.3]}], 0.1, 0.9
    )
    assert opt.dynamic_lr
    with pytest.raises(
        ValueError, match=r"param_groups\[0\]\['lr'\]: 3, param_groups\[1\]\['lr'\]: 0"
    ):
        msoptim.Momentum(
            [{"params": _params(), "lr": [0.1, 0.2, 0.3]}, {"params": _params(), "lr": []}],
            0.1,
            0.9,
        )
    with pytest.raises(ValueError, match=r"learning_rate: 3, param_groups\[0\]\['lr'\]: 0"):
        msoptim.Momentum([{"params": _params(), "lr": []}], [0.1, 0.2, 0.3], 0.9)


def test_a_refusal_outside_an_optimizer_is_raised_at_once_and_collected_inside() -> None:
    with pytest.raises(ValueError, match=r"'beta1' must be in the range \(0.0, 1.0\), but got nan"):
        check_float_in_range(NAN, "beta1", "Adam", 0.0, 1.0)
    with refusals_later() as later:
        assert math.isnan(check_float_in_range(NAN, "beta1", "Adam", 0.0, 1.0))
        with pytest.raises(ValueError, match=r"but got 2\.0"):  # MindSpore's own range check
            check_float_in_range(2.0, "beta1", "Adam", 0.0, 1.0)
    assert [str(error) for error in later] == [
        "Adam: 'beta1' must be in the range (0.0, 1.0), but got nan (float)."
    ]
    with pytest.raises(ValueError, match="but got nan"):  # collection ended with the block
        check_float_in_range(NAN, "beta1", "Adam", 0.0, 1.0)
