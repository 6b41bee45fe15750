"""Turn the user's ``params`` into validated parameter groups, once, at construction.

Accepted forms (``../API.md``): an ``nn.Module``; a list of ``Parameter`` or ``(name, Parameter)``;
a list of group dicts with keys ``params``, ``lr``, ``weight_decay``, ``grad_centralization``, or a
dict holding only ``order_params``. Every problem found is collected, then one exception of
MindSpore's type is raised, listing each problem with the group index, the key or parameter name, and
the fix. Nothing is mutated before everything is valid.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from msoptim._validate import describe
from msoptim.errors import (
    DuplicateParameterError,
    LearningRateEntryError,
    NestedLearningRateError,
    NotAParameterError,
    OrderParamsStringError,
    PerGroupArgumentError,
    UnknownGroupKeyError,
)
from msoptim.lr_sources import LrSpec, RefusedLrError, parse_lr, parse_weight_decay
from msoptim.params import is_named_param, trainable_params

__all__ = [
    "ResolvedGroup",
    "ResolvedParams",
    "check_parameter_list",
    "overlapping_parameters",
    "resolve_params",
]

GROUP_KEYS = ("params", "lr", "weight_decay", "grad_centralization", "order_params")


@dataclass
class ResolvedGroup:
    """One validated group: its parameters and the keys the user gave (None = use the default)."""

    index: int
    params: list[nn.Parameter]
    lr: LrSpec | None = None
    weight_decay: Any = None
    grad_centralization: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResolvedParams:
    """All groups, the final parameter order (MindSpore's ``opt.parameters``) and every name."""

    groups: list[ResolvedGroup]
    order: list[nn.Parameter]
    names: dict[int, str]
    is_group: bool
    ordered: bool
    #: msoptim's own refusal of what MindSpore accepts (a NaN in a group's lr), when the caller
    #: raises it after its other checks (``resolve_params(..., refuse_later=True)``).
    refused: Exception | None = None


# MindSpore validates groups in passes; with several problems, the first pass that finds one
# decides the exception type (each pass goes through the groups in order):
STRUCTURE = 1  # keys, then the 'params' list or the 'order_params' dict, group by group
LR = 2  # each group's lr
VALUES = 3  # each group's weight_decay and grad_centralization, then duplicates
ORDER = 4  # 'order_params' against the grouped parameters
LR_CELLS = 5  # a group's nested-list lr: MindSpore fails on it last, making the lrs' CellList
STRICTER = 6  # msoptim's own refusals, which MindSpore accepts (a NaN in a group's tensor lr)


class _Problems:
    """Collects violations; raises one exception listing them all, of the type MindSpore raises
    (the first violation in MindSpore's order of checks: pass, then group, then as found)."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.items: list[tuple[tuple[int, int, int], type[Exception], str]] = []
        self.stage, self.group = STRUCTURE, -1

    def focus(self, stage: int, group: int = -1) -> None:
        """Problems added from now on belong to this pass and group."""
        self.stage, self.group = stage, group

    def add(self, kind: type[Exception], message: str) -> None:
        self.items.append(((self.stage, self.group, len(self.items)), kind, message))

    def found(self, stage: int) -> bool:
        """Whether a problem of this pass was added."""
        return any(key[0] == stage for key, _, _ in self.items)

    def first_stage(self) -> int | None:
        """The earliest pass with a problem, or None."""
        return min(self.items)[0][0] if self.items else None

    def raise_if_any(self, before: int | None = None) -> None:
        """Raise if there are problems (``before``: only if one belongs to an earlier pass)."""
        first = self.first_stage()
        if first is None or (before is not None and first >= before):
            return
        raise self.error()

    def error(self) -> Exception:
        """One exception listing every problem (there is at least one)."""
        ordered = sorted(self.items, key=lambda item: item[0])
        kind = ordered[0][1]
        if len(ordered) == 1:
            message = f"{self.api}: {ordered[0][2]}"
        else:
            lines = "\n".join(f"  - {text}" for _, _, text in ordered)
            message = f"{self.api}: {len(ordered)} problems in 'params':\n{lines}"
        return kind(message)


def _param_label(param: Tensor, name: str | None) -> str:
    shape = tuple(param.shape)
    return f"'{name}' (shape {shape})" if name else f"a tensor of shape {shape}"


def _materialize(
    value: Any, where: str, problems: _Problems, *, allow_empty: bool = False
) -> list[Any] | None:
    """``list(value)`` once (a generator can only be read once), with MindSpore's checks."""
    if value is None:
        problems.add(ValueError, f"{where} must not be None. Pass a list of parameters.")
        return None
    if isinstance(value, Tensor):
        problems.add(
            TypeError,
            f"{where} must be a list of parameters, but got a single tensor of shape "
            f"{tuple(value.shape)}. Wrap it in a list: [param].",
        )
        return None
    if isinstance(value, set | frozenset):
        problems.add(
            TypeError,
            f"{where} must be an ordered list, but got a {type(value).__name__}: a set has no "
            "stable order, so the parameter order (and checkpoints) would change between runs.",
        )
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        problems.add(
            TypeError, f"{where} must be an iterable of parameters, but got {describe(value)}."
        )
        return None
    items = list(value)
    if not items and not allow_empty:
        problems.add(
            ValueError,
            f"{where} must not be empty. Remove the empty group, or put parameters in it.",
        )
        return None
    return items


def _check_parameters(
    items: list[Any],
    where: str,
    problems: _Problems,
    names: dict[int, str],
    not_a_parameter: type[Exception] = TypeError,
) -> list[nn.Parameter]:
    """Each item is a Parameter or (name, Parameter) that requires grad; records given names."""
    params: list[nn.Parameter] = []
    for position, item in enumerate(items):
        name = None
        tensor = item
        if is_named_param(item):
            name, tensor = item
        if not isinstance(tensor, nn.Parameter):
            if isinstance(tensor, Tensor):
                fix = "Wrap it with torch.nn.Parameter(...), or pass model.parameters()."
            elif isinstance(tensor, list | tuple):
                fix = (
                    "A list of parameters inside the list: make it a group dict, "
                    "{'params': [...]}, or list the parameters themselves."
                )
            else:
                fix = "Pass torch.nn.Parameter objects or (name, Parameter) pairs."
            problems.add(
                not_a_parameter,
                f"{where}[{position}] must be a torch.nn.Parameter, but got "
                f"{_describe_item(tensor)}. {fix}",
            )
            continue
        # The dtype first: an integer parameter cannot require grad at all, so its dtype is the
        # problem to report, not its requires_grad.
        if tensor.is_complex() or not tensor.is_floating_point():
            problems.add(
                TypeError,
                f"parameter {_param_label(tensor, name)} at {where}[{position}] has dtype "
                f"{tensor.dtype}; MindSpore's optimizers update real floating-point parameters only.",
            )
            continue
        if tensor.layout != torch.strided:
            problems.add(
                TypeError,
                f"parameter {_param_label(tensor, name)} at {where}[{position}] has layout "
                f"{tensor.layout}; msoptim updates dense (strided) parameters only. Pass a dense "
                "tensor (tensor.to_dense()).",
            )
            continue
        if not tensor.requires_grad:
            problems.add(
                ValueError,
                f"parameter {_param_label(tensor, name)} at {where}[{position}] has "
                "requires_grad=False, so it would never be updated. Leave frozen parameters out "
                "(msoptim.trainable_params(model) does).",
            )
            continue
        if any(size > 1 and stride == 0 for size, stride in zip(tensor.shape, tensor.stride())):
            problems.add(
                ValueError,
                f"parameter {_param_label(tensor, name)} at {where}[{position}] is an expanded "
                f"view (stride {tuple(tensor.stride())}): several of its elements share one memory "
                "location, so an in-place update cannot be applied. Pass "
                "nn.Parameter(tensor.clone()).",
            )
            continue
        if name is not None:
            known = names.get(id(tensor))
            if known is not None and known != name:
                problems.add(
                    ValueError,
                    f"parameter {_param_label(tensor, name)} is also named '{known}'. Give each "
                    "parameter one name.",
                )
            names[id(tensor)] = name
        params.append(tensor)
    return params


def _describe_item(item: Any) -> str:
    if isinstance(item, Tensor):
        kind = "parameter" if isinstance(item, nn.Parameter) else "plain tensor"
        return f"a {kind} of shape {tuple(item.shape)}"
    if isinstance(item, list | tuple) and any(isinstance(x, Tensor) for x in item):
        inner = ", ".join(map(_describe_item, item[:3])) + (", ..." if len(item) > 3 else "")
        return f"a {type(item).__name__} [{inner}]"
    return describe(item)


def _unknown_key_message(
    key: Any, where: str, allowed: Iterable[str], arguments: Iterable[str] = (), api: str = ""
) -> str:
    allowed = list(allowed)
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    if key == "learning_rate":
        hint = " A group's own learning rate is 'lr'."
    elif key in arguments:
        hint = (
            f" {key!r} is an argument of {api or 'the optimizer'}, set once for every group "
            "(MindSpore takes it per optimizer, not per group): remove it from the group, or build "
            "one optimizer per value."
        )
    return f"{where} has unknown key {key!r}. Allowed keys: {', '.join(allowed)}.{hint}"


def _resolve_group(
    index: int,
    group: Mapping[str, Any],
    problems: _Problems,
    names: dict[int, str],
    echo_keys: Mapping[str, Any],
    api: str,
    arguments: Sequence[str],
) -> ResolvedGroup | None:
    where = f"param_groups[{index}]"
    unknown = [key for key in group if key not in GROUP_KEYS and key not in echo_keys]
    for key in unknown:
        problems.add(
            UnknownGroupKeyError,
            _unknown_key_message(key, where, [*GROUP_KEYS, *echo_keys], arguments, api),
        )
    if "params" not in group:
        problems.add(
            UnknownGroupKeyError,
            f"{where} has no 'params' key. Every group needs 'params': [parameters].",
        )
        return None
    # A wrapper that copies the optimizer's keyword arguments into every group dict (torch's
    # ZeroRedundancyOptimizer) hands a rank the groups that hold none of its parameters. Such a group
    # repeats an optimizer argument (an echo key, checked below to carry the optimizer's own value),
    # which a hand-written group has no reason to do: an empty group is accepted exactly then, and
    # updates nothing. A user's empty group without echo keys still raises.
    from_wrapper = any(key in echo_keys for key in group)
    items = _materialize(group["params"], f"{where}['params']", problems, allow_empty=from_wrapper)
    if items is None:
        return None
    resolved = ResolvedGroup(index, _check_parameters(items, f"{where}['params']", problems, names))
    if "lr" in group:
        problems.focus(LR, index)
        try:
            resolved.lr = parse_lr(group["lr"], where=f"{where}['lr']", api=api)
        except NestedLearningRateError as error:
            problems.focus(LR_CELLS, index)
            problems.add(TypeError, _strip_api(str(error), api))
        except RefusedLrError as error:
            problems.focus(STRICTER, index)
            kind = LearningRateEntryError if isinstance(error, TypeError) else ValueError
            problems.add(kind, _strip_api(str(error), api))
            resolved.lr = error.stand_in  # for the table lengths, checked before
        except (TypeError, ValueError) as error:
            problems.add(type(error), _strip_api(str(error), api))
    problems.focus(VALUES, index)
    if "weight_decay" in group:
        try:
            resolved.weight_decay = parse_weight_decay(
                group["weight_decay"], where=f"{where}['weight_decay']", api=api
            )
        except (TypeError, ValueError) as error:
            problems.add(type(error), _strip_api(str(error), api))
    if "grad_centralization" in group:
        flag = group["grad_centralization"]
        if not isinstance(flag, bool):
            problems.add(
                TypeError,
                f"{where}['grad_centralization'] must be a bool, but got {describe(flag)}.",
            )
        resolved.grad_centralization = flag
    problems.focus(STRUCTURE, index)
    for key, expected in echo_keys.items():
        if key in group:
            resolved.extra[key] = group[key]
            if not _same_value(group[key], expected):
                problems.add(
                    PerGroupArgumentError,
                    f"{where}[{key!r}] is {describe(group[key])} but the optimizer's {key!r} is "
                    f"{describe(expected)}; MindSpore's optimizers take {key!r} per optimizer, not "
                    "per group. Remove it from the group.",
                )
    return resolved


def _same_value(given: Any, expected: Any) -> bool:
    if isinstance(given, Tensor) or isinstance(expected, Tensor):
        return given is expected
    try:
        return bool(given == expected)
    except Exception:
        return False


def _strip_api(message: str, api: str) -> str:
    prefix = f"{api}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _resolve_order(
    index: int,
    group: Mapping[str, Any],
    problems: _Problems,
    names: dict[int, str],
    *,
    read: bool = True,
) -> list[nn.Parameter] | None:
    """An 'order_params' dict's parameters (``read``: its entries checked; MindSpore reads only
    the last such dict's), or None."""
    where = f"param_groups[{index}]"
    unknown = [key for key in group if key not in GROUP_KEYS]
    for key in unknown:
        problems.add(UnknownGroupKeyError, _unknown_key_message(key, where, GROUP_KEYS))
    others = [key for key in group if key != "order_params" and key not in unknown]
    if others:
        problems.add(
            ValueError,
            f"{where} holds 'order_params' and also {others}: an 'order_params' dict must hold "
            "only that key. Move the other keys to a group with 'params'.",
        )
    value = group["order_params"]
    if isinstance(value, str) and read:
        problems.focus(ORDER, index)  # MindSpore reads the characters, then fails on the length
        problems.add(
            OrderParamsStringError,
            f"{where}['order_params'] must be a list of parameters, but got {describe(value)}.",
        )
        return None
    if isinstance(value, Tensor) or not isinstance(value, Iterable):
        problems.add(
            TypeError,
            f"{where}['order_params'] must be a list of parameters, but got {describe(value)}.",
        )
        return None
    if not read:
        return None
    where = f"{where}['order_params']"
    problems.focus(ORDER, index)  # MindSpore reads the entries last, when it applies the order
    return _check_parameters(list(value), where, problems, names, NotAParameterError)


def _check_table_lengths(
    groups: list[ResolvedGroup], top_table: tuple[str, int] | None, problems: _Problems
) -> None:
    """Every lr table (the optimizer's and the groups') has one length; reported in the lr pass
    of the first group whose table differs, where MindSpore raises. As in MindSpore, the length
    to match is the first non-empty table's: an empty table before it is not compared."""
    lengths = [top_table] if top_table is not None else []
    expected = top_table[1] if top_table is not None else 0
    first_differing = None
    for group in groups:
        if group.lr is not None and group.lr.kind == "table":
            lengths.append((group.lr.where, group.lr.table_length))
            if expected == 0:
                expected = group.lr.table_length
            elif first_differing is None and group.lr.table_length != expected:
                first_differing = group.index
    if first_differing is not None:
        problems.focus(LR, first_differing)
        listing = ", ".join(f"{where}: {length}" for where, length in lengths)
        problems.add(
            ValueError,
            "every dynamic learning-rate table must have the same length (one entry per step), "
            f"but got {listing}. Build them for the same total_step.",
        )


def _check_unique(groups: list[ResolvedGroup], names: dict[int, str], problems: _Problems) -> None:
    seen: dict[int, int] = {}
    for group in groups:
        problems.focus(VALUES, group.index)
        for param in group.params:
            first = seen.get(id(param))
            label = _param_label(param, names.get(id(param)))
            if first is None:
                seen[id(param)] = group.index
            elif first == group.index:
                problems.add(
                    DuplicateParameterError,
                    f"parameter {label} appears twice in param_groups[{first}]. List it once.",
                )
            else:
                problems.add(
                    DuplicateParameterError,
                    f"parameter {label} appears in param_groups[{first}] and "
                    f"param_groups[{group.index}]. Put each parameter in exactly one group.",
                )
    by_name: dict[str, int] = {}
    for group in groups:
        problems.focus(VALUES, group.index)
        for param in group.params:
            name = names.get(id(param))
            if name is None:
                continue
            other = by_name.setdefault(name, id(param))
            if other != id(param):
                problems.add(
                    DuplicateParameterError,
                    f"two different parameters are both named '{name}'. Names key checkpoints "
                    "and MindSpore's weight-decay rule: give each parameter its own name.",
                )
    unique = list({id(param): param for group in groups for param in group.params}.values())
    for first, second in overlapping_parameters(unique):
        problems.add(DuplicateParameterError, _overlap_message(first, second, names))


def _memory_span(param: Tensor) -> tuple[tuple[Any, int], int, int] | None:
    """(storage key, first byte, end byte) of a dense tensor's elements; None if it has no memory.

    Tensors on the meta device, empty ones and wrapper subclasses (DTensor, whose storage cannot
    be read) are left out: they cannot alias another parameter's memory.
    """
    if param.layout != torch.strided or param.device.type == "meta" or param.numel() == 0:
        return None
    try:
        pointer = param.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return None
    if pointer == 0:
        return None
    size = param.element_size()
    extent = 1 + sum((dim - 1) * abs(stride) for dim, stride in zip(param.shape, param.stride()))
    start = param.storage_offset() * size
    return (param.device, pointer), start, start + extent * size


def overlapping_parameters(params: Iterable[Tensor]) -> list[tuple[Tensor, Tensor]]:
    """Pairs of distinct parameters whose memory overlaps (views of one tensor, or one tensor twice).

    Two parameters that alias each other would be updated twice per step, each update reading the
    other's half-done result. Disjoint views of one flat buffer (contiguous-memory parameters, as
    MindSpore's ``flatten_gradients`` hook supports) do not overlap and are accepted. The test
    compares each tensor's byte range in its storage, so two interleaved strided views (``x[0::2]``
    and ``x[1::2]``) count as overlapping.
    """
    spans: dict[Any, list[tuple[int, int, Tensor]]] = {}
    for param in params:
        span = _memory_span(param)
        if span is not None:
            key, start, end = span
            spans.setdefault(key, []).append((start, end, param))
    pairs = []
    for items in spans.values():
        items.sort(key=lambda item: (item[0], item[1]))
        reach_end, reach_param = -1, None
        for start, end, param in items:
            if reach_param is not None and start < reach_end:
                pairs.append((reach_param, param))
            if end > reach_end:
                reach_end, reach_param = end, param
    return pairs


def _overlap_message(first: Tensor, second: Tensor, names: Mapping[int, str]) -> str:
    return (
        f"parameters {_param_label(first, names.get(id(first)))} and "
        f"{_param_label(second, names.get(id(second)))} share memory (one is a view of the other, "
        "or both view one tensor), so a step would update those elements twice. Give each its own "
        "storage (nn.Parameter(tensor.clone())), or tie them as one Parameter used twice in the model."
    )


def _apply_order(
    index: int,
    order: list[nn.Parameter],
    groups: list[ResolvedGroup],
    names: dict[int, str],
    problems: _Problems,
) -> list[nn.Parameter]:
    grouped = [param for group in groups for param in group.params]
    grouped_ids = {id(param) for param in grouped}
    order_ids = [id(param) for param in order]
    where = f"param_groups[{index}]['order_params']"
    strangers = [param for param in order if id(param) not in grouped_ids]
    missing = [param for param in grouped if id(param) not in set(order_ids)]
    repeated = {pid for pid in order_ids if order_ids.count(pid) > 1}
    for param in strangers:
        problems.add(
            ValueError,
            f"{where} lists {_param_label(param, names.get(id(param)))}, which is in no group. "
            "'order_params' must list exactly the grouped parameters: add it to a group or "
            "remove it from 'order_params'.",
        )
    for param in missing:
        problems.add(
            ValueError,
            f"{where} misses {_param_label(param, names.get(id(param)))}, which is in a group. "
            "'order_params' must list every grouped parameter (e.g. msoptim.trainable_params(net)).",
        )
    for pid in repeated:
        param = next(p for p in order if id(p) == pid)
        problems.add(
            DuplicateParameterError,
            f"{where} lists {_param_label(param, names.get(pid))} more than once. List it once.",
        )
    return order


def _parameter_items(params: Any, problems: _Problems) -> list[Any]:
    """The parameter list as a list (a module gives its trainable ``(name, Parameter)`` pairs);
    raises for None, a single tensor or dict, a non-iterable and an empty list."""
    if isinstance(params, nn.Module):
        params = trainable_params(params)
    if isinstance(params, Mapping):
        problems.add(
            TypeError,
            f"'params' must be a list, but got a single dict with keys {sorted(map(str, params))}. "
            "Wrap the group in a list: [group].",
        )
        problems.raise_if_any()
    items = _materialize(params, "'params'", problems)
    problems.raise_if_any()
    assert items is not None
    return items


def _is_parameter_item(item: Any) -> bool:
    return isinstance(item[1] if is_named_param(item) else item, nn.Parameter)


def check_parameter_list(
    params: Any,
    *,
    api: str,
    echo_keys: Mapping[str, Any] | None = None,
    arguments: Sequence[str] = (),
) -> list[Any]:
    """MindSpore's first check of an optimizer's arguments, before its loss scale and lr: the
    parameter list is a non-empty iterable whose items are all parameters or all group dicts.

    Returns the list (a generator is read once here), for :func:`resolve_params`. A mix, or an
    item that is neither, is raised by :func:`resolve_params` itself, so that the error lists
    every mistake of the groups too (``echo_keys`` and ``arguments`` as there).
    """
    items = _parameter_items(params, _Problems(api))
    dicts = [isinstance(item, Mapping) for item in items]
    if (any(dicts) and not all(dicts)) or (
        not any(dicts) and not all(map(_is_parameter_item, items))
    ):
        resolve_params(items, api=api, echo_keys=echo_keys, arguments=arguments)
        raise AssertionError(
            "resolve_params accepted a parameter list check_parameter_list refused"
        )
    return items


def resolve_params(
    params: Any,
    *,
    api: str,
    echo_keys: Mapping[str, Any] | None = None,
    arguments: Sequence[str] = (),
    top_table: tuple[str, int] | None = None,
    refuse_later: bool = False,
) -> ResolvedParams:
    """Validate ``params`` and return groups, order and names; raise one clear error otherwise.

    Args:
        params: an ``nn.Module``, a list of parameters / ``(name, Parameter)`` pairs, or group dicts.
        api: the optimizer's name, for messages.
        echo_keys: optimizer arguments a group dict may repeat with the same value (wrappers such as
            ``ZeroRedundancyOptimizer`` copy the optimizer's keyword arguments into every group).
        arguments: the optimizer's argument names, named in the error for a group that sets one.
        top_table: ``(name, length)`` of the optimizer's own lr table, which every group's table
            must match in length (checked in the lr pass, as MindSpore).
        refuse_later: return msoptim's own refusals (:data:`STRICTER`) in ``refused`` when they
            are the only problems, for the caller to raise after its other checks.

    Raises:
        TypeError, ValueError, KeyError: with every problem listed, see module docstring.
    """
    echo_keys = dict(echo_keys or {})
    problems = _Problems(api)
    names: dict[int, str] = {}
    items = _parameter_items(params, problems)
    kinds = {isinstance(item, Mapping) for item in items}
    if len(kinds) > 1:
        first_dict = next(i for i, item in enumerate(items) if isinstance(item, Mapping))
        other = next(i for i, item in enumerate(items) if not isinstance(item, Mapping))
        problems.add(
            TypeError,
            "'params' must be all parameters (or (name, Parameter) pairs) or all group dicts, not "
            f"a mix: param_groups[{other}] is {_describe_item(items[other])} but "
            f"param_groups[{first_dict}] is a group dict. Put loose parameters in a group dict of "
            "their own.",
        )  # the group dicts are checked too, so that their mistakes are listed with this one
    if kinds == {False}:
        group = ResolvedGroup(0, _check_parameters(items, "params", problems, names))
        groups = [group]
        _check_unique(groups, names, problems)
        problems.raise_if_any()
        return ResolvedParams(groups, list(group.params), names, is_group=False, ordered=False)

    groups: list[ResolvedGroup] = []
    order: list[nn.Parameter] | None = None
    order_index = -1
    # MindSpore checks every 'order_params' dict's keys and value type, but reads the entries
    # of the last one only.
    last_order = max(
        (i for i, g in enumerate(items) if isinstance(g, Mapping) and "order_params" in g),
        default=-1,
    )
    for index, group in enumerate(items):
        if not isinstance(group, Mapping):
            continue  # a loose parameter among group dicts: reported above
        problems.focus(STRUCTURE, index)
        if "order_params" in group:
            if order_index >= 0:
                warnings.warn(
                    f"{api}: param_groups[{index}] is a second 'order_params' dict (the first is "
                    f"param_groups[{order_index}]); MindSpore uses the last one, and so does "
                    "msoptim. Give one order.",
                    stacklevel=3,
                )
            order = _resolve_order(index, group, problems, names, read=index == last_order)
            order_index = index
            continue
        resolved = _resolve_group(index, group, problems, names, echo_keys, api, arguments)
        if resolved is not None:
            groups.append(resolved)
    problems.focus(STRUCTURE)
    if not groups and not problems.items:
        problems.add(ValueError, "'params' holds no group with 'params'. Add at least one group.")
    _check_table_lengths(groups, top_table, problems)
    _check_unique(groups, names, problems)
    problems.raise_if_any(before=ORDER)
    flat = [param for group in groups for param in group.params]
    ordered = bool(order)
    if order and not problems.found(ORDER):  # (entries that are not parameters: listed already)
        problems.focus(ORDER, order_index)
        flat = _apply_order(order_index, order, groups, names, problems)
    if refuse_later and problems.first_stage() == STRICTER:
        refused = problems.error()
        return ResolvedParams(groups, flat, names, is_group=True, ordered=ordered, refused=refused)
    problems.raise_if_any()
    return ResolvedParams(groups, flat, names, is_group=True, ordered=ordered)


def default_names(order: list[nn.Parameter], names: dict[int, str]) -> tuple[str, ...]:
    """Each parameter's name: the given one, else ``params[i]`` (its position in the final order)."""
    return tuple(names.get(id(param), f"params[{i}]") for i, param in enumerate(order))


def devices_of(params: Iterable[Tensor]) -> set[torch.device]:
    """The set of devices the parameters live on."""
    return {param.device for param in params}
