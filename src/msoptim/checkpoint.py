"""MindSpore ``.ckpt`` files: read, write, and map them onto a torch model and an msoptim optimizer.

A ``.ckpt`` written by ``mindspore.save_checkpoint`` is a protobuf stream (proto2)::

    message Checkpoint {
        message Value {
            required string tag = 1;                  // the parameter's name
            oneof value { TensorProto tensor = 2; MapTensorProto maptensor = 3; }
        }
        repeated Value value = 1;
    }
    message TensorProto {
        repeated int64 dims = 1;                      // [] for a 0-d tensor
        required string tensor_type = 2;              // "Float32", "Int32", "BFloat16", "str", ...
        required bytes tensor_content = 3;            // raw little-endian data, C order
    }

MindSpore writes one serialized ``Checkpoint`` (holding one ``Value``) per parameter, back to back;
a parameter over 512 MiB is split along axis 0 into several ``Value`` records with the same tag; with
``crc_check=True`` the file ends with ``b"crc_num"`` and the CRC-32 of everything before it as 10
big-endian bytes. msoptim builds the message classes at run time from a descriptor it declares itself
(``google.protobuf.descriptor_pb2``, in a private descriptor pool), so the ``protobuf`` package is the
only requirement (``pip install msoptim[checkpoint]``) and nothing clashes with MindSpore's classes.
Encrypted checkpoints and map parameters are not supported.

Names: a torch model's state maps onto MindSpore's names as ``msoptim.trainable_params`` names it
(normalization ``weight``/``bias`` → ``gamma``/``beta``); batch-norm buffers ``running_mean`` /
``running_var`` ↔ ``moving_mean`` / ``moving_variance`` (``num_batches_tracked`` has no MindSpore
counterpart); the optimizer's state uses :meth:`msoptim.Optimizer.ms_state_dict` names
(``moments.fc.weight``, ``beta1_power``, ``learning_rate``, ``global_step``, ...).
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Mapping
from functools import cache
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from msoptim._validate import describe

__all__ = [
    "MindSporeLoadResult",
    "load_mindspore_checkpoint",
    "mindspore_names",
    "mindspore_to_torch",
    "save_mindspore_checkpoint",
    "torch_to_mindspore",
]

#: MindSpore ``tensor_type`` -> numpy dtype (little-endian, as MindSpore writes on x86 and ARM).
_NUMPY_OF = {
    "Bool": np.dtype(np.bool_),
    "Int8": np.dtype("<i1"),
    "UInt8": np.dtype("<u1"),
    "Int16": np.dtype("<i2"),
    "UInt16": np.dtype("<u2"),
    "Int32": np.dtype("<i4"),
    "UInt32": np.dtype("<u4"),
    "Int64": np.dtype("<i8"),
    "UInt64": np.dtype("<u8"),
    "Float16": np.dtype("<f2"),
    "Float32": np.dtype("<f4"),
    "Float64": np.dtype("<f8"),
}
_TYPE_OF = {dtype: name for name, dtype in _NUMPY_OF.items()}
#: MindSpore splits a parameter whose data exceeds this many bytes (its SLICE_SIZE, 512 MiB).
_SLICE_BYTES = 512 * 1024 * 1024
_CRC_MARK = b"crc_num"


# ---------------------------------------------------------------------------------- protobuf schema


@cache
def _messages() -> tuple[type, type]:
    """The ``Checkpoint`` and ``Checkpoint.Value`` message classes, built from our own descriptor."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError as error:  # pragma: no cover - protobuf is an optional extra
        raise ImportError(
            "msoptim's MindSpore checkpoint support needs the 'protobuf' package: "
            "pip install 'msoptim[checkpoint]' (or pip install protobuf)."
        ) from error
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="msoptim/mindspore_checkpoint.proto", package="msoptim_ckpt", syntax="proto2"
    )

    def add_field(message, name, number, kind, label, type_name=None, oneof=None):
        item = message.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            item.type_name = type_name
        if oneof is not None:
            item.oneof_index = oneof

    tensor = file.message_type.add(name="TensorProto")
    add_field(tensor, "dims", 1, field.TYPE_INT64, field.LABEL_REPEATED)
    add_field(tensor, "tensor_type", 2, field.TYPE_STRING, field.LABEL_REQUIRED)
    add_field(tensor, "tensor_content", 3, field.TYPE_BYTES, field.LABEL_REQUIRED)
    map_tensor = file.message_type.add(name="MapTensorProto")
    add_field(
        map_tensor,
        "tensor",
        1,
        field.TYPE_MESSAGE,
        field.LABEL_REPEATED,
        ".msoptim_ckpt.TensorProto",
    )
    checkpoint = file.message_type.add(name="Checkpoint")
    value = checkpoint.nested_type.add(name="Value")
    value.oneof_decl.add(name="value")
    add_field(value, "tag", 1, field.TYPE_STRING, field.LABEL_REQUIRED)
    opt = field.LABEL_OPTIONAL
    add_field(value, "tensor", 2, field.TYPE_MESSAGE, opt, ".msoptim_ckpt.TensorProto", 0)
    add_field(value, "maptensor", 3, field.TYPE_MESSAGE, opt, ".msoptim_ckpt.MapTensorProto", 0)
    add_field(
        checkpoint,
        "value",
        1,
        field.TYPE_MESSAGE,
        field.LABEL_REPEATED,
        ".msoptim_ckpt.Checkpoint.Value",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    get = message_factory.GetMessageClass
    return (
        get(pool.FindMessageTypeByName("msoptim_ckpt.Checkpoint")),
        get(pool.FindMessageTypeByName("msoptim_ckpt.Checkpoint.Value")),
    )


def _read_varint(data: memoryview, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise ValueError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _value_records(content: bytes) -> list[bytes]:
    """The serialized ``Value`` messages of a ``Checkpoint`` stream (field 1, length-delimited).

    Walking the top level by hand keeps each parse to one parameter, so files over protobuf's 2 GiB
    message limit read as MindSpore's own (sliced) writer produced them.
    """
    data = memoryview(content)
    records, position = [], 0
    while position < len(data):
        key, position = _read_varint(data, position)
        if key != (1 << 3) | 2:
            raise ValueError(f"unexpected protobuf field key {key} at byte {position}")
        length, position = _read_varint(data, position)
        if position + length > len(data):
            raise ValueError("truncated record")
        records.append(bytes(data[position : position + length]))
        position += length
    return records


# ---------------------------------------------------------------------------------- read / write


def _decode(tag: str, tensor_type: str, dims: list[int], content: bytes) -> np.ndarray:
    if tensor_type == "str":
        return np.array(np.frombuffer(content, dtype=f"<U{len(content) // 4}")[0])
    if tensor_type == "BFloat16":
        # numpy has no bfloat16: widen exactly to float32 (bf16 is the top half of a float32).
        raw = np.frombuffer(content, dtype="<u2").astype(np.uint32) << 16
        array = raw.view(np.float32)
    elif tensor_type in _NUMPY_OF:
        array = np.frombuffer(content, dtype=_NUMPY_OF[tensor_type])
    else:
        raise ValueError(
            f"load_mindspore_checkpoint: '{tag}' has tensor_type {tensor_type!r}, which msoptim "
            f"cannot read. Supported: {', '.join([*_NUMPY_OF, 'BFloat16', 'str'])}."
        )
    # MindSpore writes dims [] for a 0-d tensor; older files wrote [0], which it also reads as 0-d.
    shape = () if list(dims) == [0] and array.size == 1 else tuple(dims)
    if int(np.prod(shape, dtype=np.int64)) != array.size:
        raise ValueError(
            f"load_mindspore_checkpoint: '{tag}' declares shape {shape} but holds {array.size} "
            f"{tensor_type} values. The file is damaged."
        )
    return array.reshape(shape).astype(array.dtype.newbyteorder("="), copy=True)


def load_mindspore_checkpoint(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a MindSpore ``.ckpt`` file into ``{name: numpy array}``, in file order.

    Reads what ``mindspore.save_checkpoint`` writes: every numeric type (``BFloat16`` is widened
    exactly to ``float32``, since numpy has no bfloat16), strings (0-d unicode arrays), parameters
    split into slices, and the CRC trailer of ``crc_check=True`` (verified when present).

    Args:
        path: the ``.ckpt`` file.

    Returns:
        A dict from MindSpore parameter name (``fc.weight``, ``moments.fc.weight``,
        ``global_step``, ...) to a numpy array that owns its memory.

    Raises:
        ValueError: the file is not an unencrypted MindSpore checkpoint, is damaged (CRC mismatch,
            truncated), or holds a map parameter or a type msoptim cannot read.

    Example:
        >>> import os, tempfile, numpy as np
        >>> from msoptim.checkpoint import load_mindspore_checkpoint, save_mindspore_checkpoint
        >>> path = os.path.join(tempfile.mkdtemp(), "net.ckpt")
        >>> save_mindspore_checkpoint({"fc.weight": np.ones((2, 3), np.float32)}, path)
        >>> {k: v.shape for k, v in load_mindspore_checkpoint(path).items()}
        {'fc.weight': (2, 3)}
    """
    _, value_class = _messages()
    # An int would be taken as an open file descriptor (and closed afterwards): refuse it.
    if not isinstance(path, str | bytes | os.PathLike):
        raise TypeError(
            f"load_mindspore_checkpoint: 'path' must be a str or os.PathLike, but got "
            f"{describe(path)}."
        )
    with open(path, "rb") as file:
        content = file.read()
    if not content:
        raise ValueError(
            f"load_mindspore_checkpoint: '{path}' is empty, so it holds no checkpoint (an "
            "interrupted save?). Use another checkpoint file."
        )
    if content[-17:-10] == _CRC_MARK:
        expected = int.from_bytes(content[-10:], "big")
        content = content[:-17]
        if binascii.crc32(content) != expected:
            raise ValueError(
                f"load_mindspore_checkpoint: the CRC-32 of '{path}' does not match its crc_num "
                "trailer: the file is damaged or was modified."
            )
    try:
        records = [value_class.FromString(record) for record in _value_records(content)]
    except Exception as error:
        raise ValueError(
            f"load_mindspore_checkpoint: '{path}' is not a readable MindSpore checkpoint ({error}). "
            "Encrypted checkpoints (enc_key=...) are not supported: decrypt it with MindSpore first."
        ) from None
    result: dict[str, np.ndarray] = {}
    pending: list[bytes] = []
    for index, record in enumerate(records):
        if record.WhichOneof("value") != "tensor":
            raise ValueError(
                f"load_mindspore_checkpoint: '{record.tag}' is a map parameter (MapTensorProto); "
                "msoptim reads dense tensors only."
            )
        pending.append(record.tensor.tensor_content)
        last = index == len(records) - 1 or records[index + 1].tag != record.tag
        if last:
            tensor = record.tensor
            result[record.tag] = _decode(
                record.tag, tensor.tensor_type, list(tensor.dims), b"".join(pending)
            )
            pending = []
    return result


def _encode(name: str, value: Any) -> tuple[list[int], str, np.ndarray | bytes]:
    """(dims, tensor_type, data) for one value: a numpy array, torch tensor, number or string."""
    if isinstance(value, str):
        return [0], "str", np.array(value).tobytes()
    if isinstance(value, Tensor):
        tensor = value.detach().cpu().contiguous()
        if tensor.dtype == torch.bfloat16:
            raw = tensor.view(torch.int16).numpy().astype("<i2").tobytes()
            return list(tensor.shape), "BFloat16", raw
        value = tensor.numpy()
    if isinstance(value, bool | int | float | np.generic):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"save_mindspore_checkpoint: '{name}' must be a numpy array, torch tensor, number or "
            f"string, but got {describe(value)}."
        )
    if value.dtype.kind == "U":
        return [0], "str", value.tobytes()
    native = value.dtype.newbyteorder("<") if value.dtype.byteorder != "|" else value.dtype
    tensor_type = _TYPE_OF.get(native)
    if tensor_type is None:
        raise TypeError(
            f"save_mindspore_checkpoint: '{name}' has dtype {value.dtype}, which MindSpore "
            f"checkpoints cannot hold. Supported: {', '.join(str(d) for d in _TYPE_OF)}."
        )
    return list(value.shape), tensor_type, np.ascontiguousarray(value, dtype=native)


def save_mindspore_checkpoint(
    checkpoint: Mapping[str, Any], path: str | os.PathLike[str], *, crc_check: bool = False
) -> None:
    """Write ``{name: array}`` as a MindSpore ``.ckpt`` file that ``mindspore.load_checkpoint`` reads.

    The bytes are those MindSpore's own writer produces for the same names, shapes and dtypes: one
    ``Checkpoint`` message per parameter, in the dict's order, parameters over 512 MiB split along
    axis 0, and with ``crc_check=True`` the ``crc_num`` trailer.

    Args:
        checkpoint: name -> numpy array, torch tensor (``bfloat16`` is written as ``BFloat16``),
            Python number or string. Build one from a model with :func:`torch_to_mindspore`.
        path: the file to write (replaced if it exists).
        crc_check: append MindSpore's CRC-32 trailer.

    Raises:
        TypeError: a value of a type or dtype MindSpore checkpoints cannot hold (e.g. complex).

    Example:
        >>> import os, tempfile, torch
        >>> from msoptim.checkpoint import load_mindspore_checkpoint, save_mindspore_checkpoint
        >>> from msoptim.checkpoint import torch_to_mindspore
        >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
        >>> path = os.path.join(tempfile.mkdtemp(), "model.ckpt")
        >>> save_mindspore_checkpoint(torch_to_mindspore(model), path)
        >>> list(load_mindspore_checkpoint(path))
        ['0.weight', '0.bias', '1.gamma', '1.beta', '1.moving_mean', '1.moving_variance']
    """
    checkpoint_class, _ = _messages()
    if not isinstance(checkpoint, Mapping):
        raise TypeError(
            "save_mindspore_checkpoint: 'checkpoint' must be a dict of name -> array, but got "
            f"{describe(checkpoint)}."
        )
    chunks = []
    for name, value in checkpoint.items():
        if not isinstance(name, str):
            raise TypeError(
                f"save_mindspore_checkpoint: every name must be a str, but got {describe(name)}."
            )
        dims, tensor_type, data = _encode(name, value)
        if isinstance(data, np.ndarray):
            count = -(-data.nbytes // _SLICE_BYTES) if data.nbytes > _SLICE_BYTES else 1
            pieces = [p.tobytes() for p in np.array_split(data, count)] if count > 1 else None
            pieces = pieces or [data.tobytes()]
        else:
            pieces = [data]
        for piece in pieces:
            message = checkpoint_class()
            record = message.value.add()
            record.tag = name
            record.tensor.dims.extend(dims)
            record.tensor.tensor_type = tensor_type
            record.tensor.tensor_content = piece
            chunks.append(message.SerializeToString())
    content = b"".join(chunks)
    if crc_check:
        content += _CRC_MARK + binascii.crc32(content).to_bytes(10, "big")
    with open(path, "wb") as file:
        file.write(content)


# ---------------------------------------------------------------------------------- name mapping

_NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
_BUFFER_NAMES = {"running_mean": "moving_mean", "running_var": "moving_variance"}


def mindspore_names(model: nn.Module) -> dict[str, str]:
    """``{torch state_dict key: MindSpore name}`` for every entry of ``model.state_dict()`` that
    MindSpore has (``num_batches_tracked`` and other torch-only buffers are left out).

    Parameters are named as :func:`msoptim.trainable_params` names them (so the optimizer's state
    names agree), including frozen ones; normalization buffers become ``moving_mean`` /
    ``moving_variance``.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
        >>> mindspore_names(net)["1.running_var"]
        '1.moving_variance'
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"mindspore_names: 'model' must be a torch.nn.Module, but got {describe(model)}."
        )
    names: dict[str, str] = {}
    first_name: dict[int, str] = {}
    for key, value in model.state_dict(keep_vars=True).items():
        path, _, local = key.rpartition(".")
        is_norm = isinstance(model.get_submodule(path), _NORM_LAYERS)
        if is_norm and local == "num_batches_tracked":
            continue
        renamed = local
        if is_norm:
            renamed = {"weight": "gamma", "bias": "beta", **_BUFFER_NAMES}.get(local, local)
        # A tensor shared by two modules has one MindSpore name: its first one, as in
        # trainable_params (named_parameters() order equals state_dict() order).
        names[key] = first_name.setdefault(id(value), f"{path}.{renamed}" if path else renamed)
    return names


class MindSporeLoadResult(NamedTuple):
    """What :func:`mindspore_to_torch` could not match (both empty after a strict load)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _as_tensor(value: Any) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach()
    array = np.asarray(value)
    if array.dtype.kind == "U":
        raise TypeError("a string entry cannot be loaded into a tensor")
    return torch.from_numpy(np.array(array, copy=True))


def mindspore_to_torch(
    checkpoint: Mapping[str, Any],
    model: nn.Module,
    optimizer: Any = None,
    *,
    strict: bool = True,
) -> MindSporeLoadResult:
    """Load a MindSpore checkpoint dict into a torch ``model`` (and an msoptim ``optimizer``).

    Model entries are matched by :func:`mindspore_names` (``bn.gamma`` → ``bn.weight``,
    ``bn.moving_mean`` → ``bn.running_mean``, ...), checked for shape (MindSpore's shape, or any
    shape with the same number of elements, as for its squeezed 4-D conv layouts) and cast to the
    model's dtypes. The entries the optimizer knows (``optimizer.ms_state_dict()`` names: ``moments.*``,
    ``beta1_power``, ``learning_rate``, ``global_step``, ...) go to ``optimizer.load_ms_state_dict``,
    so training continues where MindSpore stopped (same lr index, same bias correction).

    Args:
        checkpoint: ``{name: array}``, e.g. from :func:`load_mindspore_checkpoint`.
        model: the torch model, with the same structure and attribute names as the MindSpore network.
        optimizer: an :class:`msoptim.Optimizer` built on ``msoptim.trainable_params(model)``, or None.
        strict: raise if a model entry is missing from the checkpoint or a checkpoint entry is
            used by neither the model nor the optimizer.

    Returns:
        ``MindSporeLoadResult(missing_keys, unexpected_keys)``: torch keys not found, and
        checkpoint names not used.

    Raises:
        KeyError: (``strict``) missing or unexpected names; nothing is loaded.
        ValueError: a shape that does not fit; nothing is loaded.

    Example:
        >>> import torch
        >>> src = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
        >>> dst = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
        >>> mindspore_to_torch(torch_to_mindspore(src), dst)
        MindSporeLoadResult(missing_keys=[], unexpected_keys=[])
        >>> bool(torch.equal(src[0].weight, dst[0].weight))
        True
    """
    if not isinstance(checkpoint, Mapping):
        raise TypeError(
            "mindspore_to_torch: 'checkpoint' must be a dict of name -> array, but got "
            f"{describe(checkpoint)}."
        )
    names = mindspore_names(model)
    state = model.state_dict(keep_vars=True)
    optimizer_names = set(optimizer.ms_state_dict()) if optimizer is not None else set()
    missing = [key for key, ms_name in names.items() if ms_name not in checkpoint]
    used = set(names.values()) | optimizer_names
    unexpected = [name for name in checkpoint if name not in used]
    if strict and (missing or unexpected):
        raise _LoadKeyError(
            "mindspore_to_torch: the checkpoint does not match the model"
            + (" and optimizer" if optimizer is not None else "")
            + ".\n"
            + (f"  missing from the checkpoint: {missing}\n" if missing else "")
            + (f"  not used by the model or optimizer: {unexpected}\n" if unexpected else "")
            + "Check the module attribute names (they must equal MindSpore's cell names), pass the "
            "optimizer if the checkpoint holds its state, or use strict=False."
        )
    updates: list[tuple[Tensor, Tensor]] = []
    for key, ms_name in names.items():
        if ms_name not in checkpoint:
            continue
        target = state[key]
        try:
            value = _as_tensor(checkpoint[ms_name])
        except TypeError as error:
            raise ValueError(f"mindspore_to_torch: '{ms_name}': {error}.") from None
        if value.numel() != target.numel():
            raise ValueError(
                f"mindspore_to_torch: '{ms_name}' has shape {tuple(value.shape)} in the checkpoint "
                f"but '{key}' has shape {tuple(target.shape)} in the model."
            )
        updates.append((target, value.reshape(target.shape).to(target.dtype)))
    optimizer_state = {name: checkpoint[name] for name in checkpoint if name in optimizer_names}
    if optimizer is not None and optimizer_state:
        optimizer.load_ms_state_dict(optimizer_state)
    with torch.no_grad():
        for target, value in updates:
            target.copy_(value)
    return MindSporeLoadResult(missing, unexpected)


class _LoadKeyError(KeyError):
    """A ``KeyError`` whose message prints without quotes (multi-line)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _to_numpy(value: Tensor) -> np.ndarray:
    tensor = value.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy().copy()


def torch_to_mindspore(model: nn.Module, optimizer: Any = None) -> dict[str, np.ndarray]:
    """A torch model's state (and an msoptim optimizer's) under MindSpore's checkpoint names.

    The order is MindSpore's: the model's entries (state_dict order), then the optimizer's
    (``global_step``, ``learning_rate``, constants, state buffers). ``bfloat16`` values are
    widened to ``float32`` (numpy has no bfloat16; pass tensors to
    :func:`save_mindspore_checkpoint` directly to keep them as ``BFloat16``).

    Args:
        model: the torch model.
        optimizer: an :class:`msoptim.Optimizer` over its parameters, or None.

    Returns:
        ``{MindSpore name: numpy array}``, ready for :func:`save_mindspore_checkpoint`.

    Example:
        >>> import torch, msoptim
        >>> model = torch.nn.Linear(2, 1)
        >>> opt = msoptim.Momentum(msoptim.trainable_params(model), 0.1, 0.9)
        >>> list(torch_to_mindspore(model, opt))
        ['weight', 'bias', 'global_step', 'learning_rate', 'momentum', 'moments.weight', 'moments.bias']
    """
    state = model.state_dict(keep_vars=True)
    result = {ms_name: _to_numpy(state[key]) for key, ms_name in mindspore_names(model).items()}
    if optimizer is not None:
        for name, value in optimizer.ms_state_dict().items():
            if name in result:
                raise ValueError(
                    f"torch_to_mindspore: the optimizer's '{name}' has the name of a model entry."
                )
            result[name] = _to_numpy(value)
    return result
