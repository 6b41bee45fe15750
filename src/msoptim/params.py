"""Parameters and their MindSpore-style names.

MindSpore's rules read parameter names (weight decay skips names containing ``beta``/``gamma``,
checkpoints are keyed by name). ``torch.Tensor.name`` is read-only in torch, so names travel as
``(name, Parameter)`` pairs, as ``named_parameters()`` yields them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from msoptim._validate import describe

__all__ = ["NamedParam", "trainable_params"]

NamedParam = tuple[str, nn.Parameter]

_NORM_LAYERS = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
)
_MINDSPORE_NORM_NAMES = {"weight": "gamma", "bias": "beta"}


def trainable_params(module: nn.Module) -> list[NamedParam]:
    """The parameters of ``module`` that require grad, with MindSpore-style names.

    Normalization layers (``BatchNorm*``, ``LayerNorm``, ``GroupNorm``, ``InstanceNorm*``) report
    ``weight``/``bias`` as ``gamma``/``beta``, so MindSpore's name-based weight-decay rule (skip names
    containing ``beta`` or ``gamma``) means the same on a PyTorch model. Order is ``named_parameters()``
    order; a parameter shared by two modules appears once.

    Args:
        module: any ``torch.nn.Module``.

    Returns:
        A list of ``(name, Parameter)`` pairs.

    Raises:
        TypeError: if ``module`` is not an ``nn.Module``.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
        >>> [name for name, _ in trainable_params(net)]
        ['0.weight', '0.bias', '1.gamma', '1.beta']
    """
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"trainable_params: 'module' must be a torch.nn.Module, but got {describe(module)}. "
            "Pass the model itself."
        )
    norm_owner: dict[int, str] = {}
    for prefix, sub in module.named_modules():
        if isinstance(sub, _NORM_LAYERS):
            for local, param in sub.named_parameters(recurse=False):
                renamed = _MINDSPORE_NORM_NAMES.get(local, local)
                norm_owner[id(param)] = f"{prefix}.{renamed}" if prefix else renamed
    result: list[NamedParam] = []
    for name, param in module.named_parameters():
        if param.requires_grad:
            result.append((norm_owner.get(id(param), name), param))
    return result


def is_named_param(item: Any) -> bool:
    """True for a ``(str, Tensor)`` pair."""
    return (
        isinstance(item, tuple)
        and len(item) == 2
        and isinstance(item[0], str)
        and isinstance(item[1], torch.Tensor)
    )


def split_named(items: Iterable[Any]) -> tuple[list[Any], list[str | None]]:
    """Split a list of ``Parameter`` or ``(name, Parameter)`` items into tensors and names (or None)."""
    tensors: list[Any] = []
    names: list[str | None] = []
    for item in items:
        if is_named_param(item):
            names.append(item[0])
            tensors.append(item[1])
        else:
            names.append(None)
            tensors.append(item)
    return tensors, names
