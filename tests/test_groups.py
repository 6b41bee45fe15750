"""Parameter groups: MindSpore's rules, every mistake a clear error that changes nothing.

Contract: a violation raises the built-in type MindSpore raises (TypeError / ValueError / KeyError,
RuntimeError-compatible for duplicates) with a message naming the group index, the key or the
parameter, and the fix; the parameters and an existing optimizer's state are untouched.
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import msoptim


def make_params():
    torch.manual_seed(0)
    return {
        "conv.weight": nn.Parameter(torch.randn(4, 16, 1, 1)),
        "bn.gamma": nn.Parameter(torch.ones(4)),
        "bn.beta": nn.Parameter(torch.zeros(4)),
        "fc.weight": nn.Parameter(torch.randn(3, 4)),
        "fc.bias": nn.Parameter(torch.zeros(3)),
    }


def pairs(params, *names):
    return [(name, params[name]) for name in names]


def _bad_groups(p):
    frozen = nn.Parameter(torch.ones(2), requires_grad=False)
    return {
        "empty group": (
            [{"params": []}, {"params": pairs(p, "fc.weight")}],
            ValueError,
            r"param_groups\[0\]\['params'\] must not be empty",
        ),
        "param in two groups": (
            [{"params": pairs(p, "fc.weight")}, {"params": pairs(p, "fc.weight", "fc.bias")}],
            RuntimeError,
            r"'fc\.weight'.*param_groups\[0\] and param_groups\[1\]",
        ),
        "param twice in one group": (
            [{"params": pairs(p, "fc.weight", "fc.weight")}],
            ValueError,
            r"'fc\.weight'.*twice in param_groups\[0\]",
        ),
        "unknown key with suggestion": (
            [{"params": pairs(p, "fc.weight"), "weight_decy": 0.1}],
            KeyError,
            r"param_groups\[0\] has unknown key 'weight_decy'.*Did you mean 'weight_decay'\?",
        ),
        "order_params misses a param": (
            [
                {"params": pairs(p, "fc.weight", "fc.bias")},
                {"order_params": pairs(p, "fc.weight")},
            ],
            ValueError,
            r"order_params'\] misses 'fc\.bias'",
        ),
        "order_params lists a stranger": (
            [
                {"params": pairs(p, "fc.weight")},
                {"order_params": pairs(p, "fc.weight", "fc.bias")},
            ],
            ValueError,
            r"lists 'fc\.bias'.*in no group",
        ),
        "order_params with other keys": (
            [{"params": pairs(p, "fc.weight")}, {"order_params": pairs(p, "fc.weight"), "lr": 0.1}],
            ValueError,
            r"param_groups\[1\] holds 'order_params' and also \['lr'\]",
        ),
        "group nested as lr": (
            [{"params": pairs(p, "fc.weight"), "lr": [{"params": pairs(p, "fc.bias")}]}],
            TypeError,
            r"param_groups\[0\]\['lr'\].*dict.*cannot be nested",
        ),
        "non-float weight decay": (
            [{"params": pairs(p, "fc.weight"), "weight_decay": "0.1"}],
            TypeError,
            r"param_groups\[0\]\['weight_decay'\] must be a float",
        ),
        "negative weight decay": (
            [{"params": pairs(p, "fc.weight"), "weight_decay": -0.1}],
            ValueError,
            r"param_groups\[0\]\['weight_decay'\] must be a finite float >= 0",
        ),
        "plain tensor": (
            [{"params": [p["fc.weight"], torch.ones(3)]}],
            TypeError,
            r"param_groups\[0\]\['params'\]\[1\] must be a torch\.nn\.Parameter.*plain tensor",
        ),
        "requires_grad False": (
            [{"params": [("frozen", frozen)]}],
            ValueError,
            r"'frozen'.*requires_grad=False",
        ),
        "no params key": (
            [{"lr": 0.1}],
            KeyError,
            r"param_groups\[0\] has no 'params' key",
        ),
        "negative group lr": (
            [{"params": pairs(p, "fc.weight"), "lr": -0.1}],
            ValueError,
            r"param_groups\[0\]\['lr'\] must be a finite float >= 0",
        ),
        "2-d list lr": (
            [{"params": pairs(p, "fc.weight"), "lr": [[0.1, 0.2]]}],
            TypeError,
            r"param_groups\[0\]\['lr'\] must be a flat list",
        ),
        "2-d list lr and a wrong order (MindSpore checks the order first: its ValueError)": (
            [
                {"params": pairs(p, "fc.weight"), "lr": [[0.1, 0.2]]},
                {"order_params": pairs(p, "fc.weight", "fc.bias")},
            ],
            ValueError,
            r"2 problems(.|\n)*lists 'fc\.bias'.*in no group(.|\n)*must be a flat list",
        ),
        "a parameter twice and a tensor in order_params (MindSpore's duplicate error first)": (
            [
                {"params": pairs(p, "fc.weight", "fc.bias", "fc.bias")},
                {"order_params": [p["fc.weight"], torch.ones(3)]},
            ],
            RuntimeError,
            r"2 problems(.|\n)*'fc\.bias'.*appears twice(.|\n)*\['order_params'\]\[1\] must be a "
            r"torch\.nn\.Parameter",
        ),
        "gc not bool": (
            [{"params": pairs(p, "fc.weight"), "grad_centralization": 1}],
            TypeError,
            r"grad_centralization'\] must be a bool",
        ),
        "mixed dicts and params": (
            [{"params": pairs(p, "fc.weight")}, p["fc.bias"]],
            TypeError,
            r"all parameters .* or all group dicts, not a mix",
        ),
        "a mix, and a group dict's own mistake (listed with it; MindSpore's TypeError)": (
            [{"params": pairs(p, "fc.weight")}, p["fc.bias"], {"params": [], "order_param": True}],
            TypeError,
            r"3 problems(.|\n)*not a mix(.|\n)*param_groups\[2\] has unknown key 'order_param'"
            r"(.|\n)*param_groups\[2\]\['params'\] must not be empty",
        ),
        "a list of parameters inside the list": (
            [[p["fc.weight"]]],
            TypeError,
            r"params\[0\] must be a torch\.nn\.Parameter.*make it a group dict, \{'params'",
        ),
        "set of params": (
            {p["fc.weight"]},
            TypeError,
            r"a set has no stable order",
        ),
        "tables of different lengths": (
            [
                {"params": pairs(p, "fc.weight"), "lr": [0.1, 0.2]},
                {"params": pairs(p, "fc.bias"), "lr": [0.1, 0.2, 0.3]},
            ],
            ValueError,
            r"same length.*param_groups\[0\]\['lr'\]: 2, param_groups\[1\]\['lr'\]: 3",
        ),
        "tables of different lengths and a parameter in two groups (the lr pass first)": (
            [
                {"params": pairs(p, "fc.weight"), "lr": [0.1, 0.2]},
                {"params": pairs(p, "fc.weight", "fc.bias"), "lr": [0.1, 0.2, 0.3]},
            ],
            ValueError,
            r"2 problems(.|\n)*same length(.|\n)*'fc\.weight'.*param_groups\[0\] and "
            r"param_groups\[1\]",
        ),
        "a NaN in a group's table and a parameter in two groups (msoptim's refusal last)": (
            [
                {"params": pairs(p, "fc.weight"), "lr": [0.1, float("nan")]},
                {"params": pairs(p, "fc.weight", "fc.bias")},
            ],
            RuntimeError,
            r"2 problems(.|\n)*'fc\.weight'.*param_groups\[0\] and param_groups\[1\](.|\n)*"
            r"must hold finite values",
        ),
        "per-group momentum": (
            [{"params": pairs(p, "fc.weight"), "momentum": 0.5}],
            KeyError,
            r"unknown key 'momentum'.*argument of Momentum.*not per group",
        ),
        "group learning_rate (MindSpore's KeyError, even with the optimizer's value)": (
            [{"params": pairs(p, "fc.weight"), "learning_rate": 0.1}],
            KeyError,
            r"unknown key 'learning_rate'.*own learning rate is 'lr'",
        ),
        "two names for one param": (
            [{"params": [("a", p["fc.weight"])]}, {"order_params": [("b", p["fc.weight"])]}],
            ValueError,
            r"also named 'a'",
        ),
    }


BAD_GROUP_IDS = list(_bad_groups(make_params()))


@pytest.mark.parametrize("case", BAD_GROUP_IDS)
def test_group_mistake_raises_clear_error_and_changes_nothing(case):
    params = make_params()
    before = {name: p.detach().clone() for name, p in params.items()}
    groups, kind, pattern = _bad_groups(params)[case]
    with pytest.raises(kind, match=pattern) as info:
        msoptim.Momentum(groups, learning_rate=0.1, momentum=0.9)
    assert str(info.value).startswith("Momentum")
    for name, p in params.items():
        assert torch.equal(p, before[name]), name
        assert p.grad is None


def test_all_problems_are_listed_at_once():
    p = make_params()
    groups = [
        {"params": pairs(p, "fc.weight"), "weight_decy": 0.1},
        {"params": []},
        {"params": pairs(p, "fc.bias"), "lr": -1.0},
    ]
    with pytest.raises(KeyError) as info:
        msoptim.Momentum(groups, learning_rate=0.1, momentum=0.9)
    message = str(info.value)
    assert "3 problems" in message
    assert "weight_decy" in message
    assert "param_groups[1]" in message
    assert "param_groups[2]" in message


def test_failed_add_param_group_changes_nothing():
    p = make_params()
    opt = msoptim.Momentum(pairs(p, "fc.weight"), learning_rate=0.1, momentum=0.9)
    state = opt.state_dict()
    with pytest.raises(ValueError, match=r"already in this optimizer"):
        opt.add_param_group({"params": pairs(p, "fc.weight")})
    with pytest.raises(KeyError, match=r"Did you mean 'weight_decay'"):
        opt.add_param_group({"params": pairs(p, "fc.bias"), "weight_decai": 0.1})
    assert len(opt.param_groups) == 1
    assert len(opt.parameters) == 1
    assert opt.state_dict()["param_groups"][0]["lr"] == state["param_groups"][0]["lr"]


def test_add_param_group_extends_the_optimizer():
    p = make_params()
    opt = msoptim.Momentum(pairs(p, "fc.weight"), learning_rate=0.1, momentum=0.9)
    opt.add_param_group({"params": pairs(p, "fc.bias"), "weight_decay": 0.01})
    assert opt.parameter_names == ("fc.weight", "fc.bias")
    assert "moments" in opt.state[p["fc.bias"]]
    p["fc.weight"].grad = torch.ones_like(p["fc.weight"])
    p["fc.bias"].grad = torch.ones_like(p["fc.bias"])
    opt.step()
    assert int(opt.global_step) == 1


def test_order_params_fixes_the_order_and_group_defaults_apply():
    p = make_params()
    groups = [
        {"params": pairs(p, "fc.weight", "fc.bias"), "lr": 0.5, "weight_decay": 0.01},
        {"params": pairs(p, "bn.gamma", "bn.beta"), "weight_decay": 0.0},
        {"params": pairs(p, "conv.weight"), "grad_centralization": True},
        {"order_params": pairs(p, "conv.weight", "bn.gamma", "bn.beta", "fc.weight", "fc.bias")},
    ]
    opt = msoptim.Momentum(groups, learning_rate=0.1, momentum=0.9, weight_decay=1e-4)
    assert opt.parameter_names == ("conv.weight", "bn.gamma", "bn.beta", "fc.weight", "fc.bias")
    assert opt.decay_flags == (True, False, False, True, True)
    assert opt.grad_centralization_flags == (True, False, False, False, False)
    assert opt.is_group
    assert opt.is_group_lr
    assert not opt.dynamic_lr
    assert opt.is_group_params_ordered
    lrs = [round(float(x), 6) for x in opt.get_lr()]
    assert lrs == [0.1, 0.1, 0.1, 0.5, 0.5]
    assert opt.param_groups[0]["lr_name"] == "learning_rate_group_0"
    assert opt.param_groups[1]["lr_name"] == "learning_rate"


def test_generator_params_are_read_once():
    p = make_params()
    opt = msoptim.Momentum(
        [{"params": (x for x in pairs(p, "fc.weight", "fc.bias"))}],
        learning_rate=0.1,
        momentum=0.9,
    )
    assert opt.parameter_names == ("fc.weight", "fc.bias")


def test_empty_order_params_is_ignored_as_in_mindspore():
    p = make_params()
    opt = msoptim.Momentum(
        [{"params": pairs(p, "fc.bias", "fc.weight")}, {"order_params": []}],
        learning_rate=0.1,
        momentum=0.9,
    )
    assert opt.parameter_names == ("fc.bias", "fc.weight")


def test_unnamed_params_get_positional_names_and_a_warning_with_weight_decay():
    p = make_params()
    with pytest.warns(UserWarning, match=re.escape("trainable_params(model)")):
        opt = msoptim.Momentum(
            [p["fc.weight"], p["bn.gamma"]], learning_rate=0.1, momentum=0.9, weight_decay=0.1
        )
    assert opt.parameter_names == ("params[0]", "params[1]")
    assert opt.decay_flags == (True, True)


def test_params_on_two_devices_are_rejected():
    a = nn.Parameter(torch.ones(2))
    b = nn.Parameter(torch.ones(2, device="meta"))
    with pytest.raises(ValueError, match=r"one device"):
        msoptim.Momentum([("a", a), ("b", b)], learning_rate=0.1, momentum=0.9)


def _mixed_mistakes(p):
    a, b = pairs(p, "conv.weight", "bn.gamma", "bn.beta"), pairs(p, "fc.weight", "fc.bias")
    return [
        # (groups, the type MindSpore 2.10 raised): several mistakes, the first pass decides
        ([{"params": a, "weight_decay": None}, {"params": b, "foo": 1}], KeyError),
        ([{"params": a, "lr": "x"}, {"params": [*b, torch.ones(3)]}], TypeError),
        ([{"params": a, "weight_decay": -1.0}, {"params": b, "lr": None}], TypeError),
        ([{"params": [*a, a[0]]}, {"params": b, "weight_decay": "x"}], RuntimeError),
        ([{"params": a + b}, {"order_params": a + b, "grad_centralisation": True}], KeyError),
        ([{"params": a + b}, {"order_params": ["conv.weight", *a[1:], *b]}], AttributeError),
        ([{"params": a + b}, {"order_params": [torch.ones(3), *a[1:], *b]}], AttributeError),
        ([{"params": a + b}, {"order_params": "conv.weight"}], ValueError),
    ]


@pytest.mark.parametrize("index", range(8))
def test_the_exception_type_is_mindspores_first_failing_check(index):
    """Recorded from MindSpore 2.10 (tools/record_golden_errors.py): with mistakes in several
    checks, MindSpore's pass order (keys and parameter lists, lrs, weight decays and duplicates,
    order_params) decides the type; every mistake is still listed."""
    groups, mindspore_type = _mixed_mistakes(make_params())[index]
    with pytest.raises(mindspore_type):
        msoptim.Momentum(groups, 0.1, 0.9)


def test_the_base_class_checks_come_before_the_optimizers_own():
    """MindSpore's optimizers call the base ``Optimizer.__init__`` first: with a group mistake and
    a bad optimizer argument, the group's error type wins (recorded from MindSpore 2.10)."""
    p = make_params()
    with pytest.raises(KeyError):  # not the ValueError of momentum < 0
        msoptim.Momentum([{"params": pairs(p, "fc.weight"), "foo": 1}], 0.1, -1.0)
    with pytest.raises(TypeError):  # grad_centralization=1, not amsgrad with lazy (ValueError)
        msoptim.Adam(
            [{"params": pairs(p, "fc.weight"), "grad_centralization": 1}],
            0.1,
            use_amsgrad=True,
            use_lazy=True,
        )
    with pytest.raises(ValueError, match="'momentum'"):  # alone, the argument's own error
        msoptim.Momentum(pairs(p, "fc.weight"), 0.1, -1.0)


#: (optimizer, valid arguments, one bad argument of its own, the error MindSpore raises for it)
OWN_ARGUMENT_MISTAKES = [
    ("Momentum", {"learning_rate": 0.1, "momentum": 0.9}, {"momentum": -1.0}, ValueError),
    ("SGD", {"learning_rate": 0.1}, {"momentum": -1.0}, ValueError),
    ("ASGD", {"learning_rate": 0.1}, {"lambd": 1}, TypeError),
    ("FTRL", {"learning_rate": 0.1}, {"l1": -1.0}, ValueError),
    ("Rprop", {"learning_rate": 0.1}, {"etas": [0.5, 1.2]}, TypeError),
    ("Lamb", {"learning_rate": 0.1}, {"beta1": 1.5}, ValueError),
    ("Adam", {"learning_rate": 0.1}, {"beta1": 1.5}, ValueError),
    ("LazyAdam", {"learning_rate": 0.1}, {"beta1": 1.5}, ValueError),
    ("AdamOffload", {"learning_rate": 0.1}, {"beta1": 1.5}, ValueError),
    ("AdamWeightDecay", {"learning_rate": 0.1}, {"beta1": 1.5}, ValueError),
    ("AdaMax", {"learning_rate": 0.1}, {"beta1": 1.5}, ValueError),
    ("RMSProp", {"learning_rate": 0.1}, {"decay": -1.0}, ValueError),
    ("Adagrad", {"learning_rate": 0.1}, {"accum": -1.0}, ValueError),
    ("Adadelta", {"learning_rate": 0.1}, {"rho": 1.5}, ValueError),
    ("ProximalAdagrad", {"learning_rate": 0.1}, {"accum": -1.0}, ValueError),
    (
        "AdaFactor",
        {"learning_rate": 0.1, "relative_step": False, "scale_parameter": False},
        {"clip_threshold": -1.0},
        ValueError,
    ),
]


@pytest.mark.parametrize(
    ("name", "valid", "bad", "own_error"),
    OWN_ARGUMENT_MISTAKES,
    ids=[mistake[0] for mistake in OWN_ARGUMENT_MISTAKES],
)
def test_every_optimizer_checks_the_base_arguments_before_its_own(name, valid, bad, own_error):
    """Every MindSpore optimizer calls the base ``Optimizer.__init__`` before checking its own
    arguments (2.10 sources): a group mistake (an unknown key: KeyError) wins over a bad argument
    of the optimizer's, which alone raises its own error."""
    cls = getattr(msoptim, name)
    p = make_params()
    with pytest.raises(own_error):
        cls(pairs(p, "fc.weight"), **{**valid, **bad})
    with pytest.raises(KeyError, match="foo"):
        cls([{"params": pairs(p, "fc.weight"), "foo": 1}], **{**valid, **bad})
    cls(pairs(p, "fc.weight"), **valid)  # the valid arguments are valid
