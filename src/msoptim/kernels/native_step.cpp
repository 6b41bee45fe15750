// The work around a C kernel's step, in C++ (msoptim/kernels/_native.py).
//
// A C kernel walks raw pointers, so before each call every tensor it walks must be checked
// (plain float32 CPU tensor, contiguous, the row's length) and its address read into the
// kernel's table. In Python that is several attribute reads per tensor, each a trip through the
// interpreter with caches a large update has just evicted: 0.4 ms a step for ResNet-50's 161
// parameters. Here it is one pass. The step counter's `+= 1` is here too: through torch's
// dispatcher it costs 0.1 ms of such a step, and so do the group lrs whose arithmetic is a
// gather (a per-step table) or `(lr + 1) - 1` (a static lr beside dynamic ones).
//
// Built once per machine against the installed torch's headers (Python extension module
// `msoptim_native_step`); where it cannot be built the Python checks and torch ops run instead.

#include <Python.h>
#include <ATen/core/Tensor.h>
#include <torch/csrc/autograd/python_variable.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <numeric>
#include <vector>

namespace {

// The Python types a kernel may take: torch.Tensor and torch.nn.Parameter (set_plain_types), not
// their subclasses, which may hold anything behind a tensor's interface.
std::vector<PyTypeObject*> plain_types;

const at::Tensor* plain_tensor(PyObject* object) {
  PyTypeObject* type = Py_TYPE(object);
  if (std::find(plain_types.begin(), plain_types.end(), type) == plain_types.end()) {
    return nullptr;
  }
  const at::Tensor& tensor = THPVariable_Unpack(object);
  if (!tensor.defined() || tensor.layout() != at::kStrided ||
      tensor.device().type() != at::kCPU || tensor.scalar_type() != at::kFloat ||
      tensor.is_neg() || tensor.is_conj() || tensor._is_zerotensor()) {
    return nullptr;
  }
  return &tensor;
}

// A tensor a kernel may walk: plain float32 CPU, contiguous, with memory.
const at::Tensor* walkable_tensor(PyObject* object) {
  const at::Tensor* tensor = plain_tensor(object);
  if (tensor == nullptr || !tensor->is_contiguous() || tensor->const_data_ptr() == nullptr) {
    return nullptr;
  }
  return tensor;
}

bool list_of(PyObject* lists, Py_ssize_t index, Py_ssize_t rows, PyObject** out) {
  PyObject* items = PyTuple_GET_ITEM(lists, index);
  if (!PyList_Check(items) || PyList_GET_SIZE(items) != rows) {
    return false;
  }
  *out = items;
  return true;
}

// walkable(lists, walked, scalars) -> bool: lists[:walked] hold, position by position, tensors a
// kernel may walk, all of one length per position, not empty; every tensor of lists[scalars:] is a
// plain float32 CPU tensor of one element (a scalar the kernel reads by address; other objects
// there are the caller's). The Python twin: _native._walkable and _readable_scalars.
PyObject* walkable(PyObject*, PyObject* args) {
  PyObject* lists;
  Py_ssize_t walked, scalars;
  if (!PyArg_ParseTuple(args, "O!nn", &PyTuple_Type, &lists, &walked, &scalars)) {
    return nullptr;
  }
  const Py_ssize_t count = PyTuple_GET_SIZE(lists);
  if (count == 0 || walked < 1 || walked > count || scalars < 0) {
    PyErr_SetString(PyExc_ValueError, "walkable: 1 <= walked <= len(lists), scalars >= 0");
    return nullptr;
  }
  try {
    PyObject* first = PyTuple_GET_ITEM(lists, 0);
    if (!PyList_Check(first)) {
      Py_RETURN_FALSE;
    }
    const Py_ssize_t rows = PyList_GET_SIZE(first);
    std::vector<int64_t> lengths(rows);
    for (Py_ssize_t column = 0; column < walked; ++column) {
      PyObject* items;
      if (!list_of(lists, column, rows, &items)) {
        Py_RETURN_FALSE;
      }
      for (Py_ssize_t row = 0; row < rows; ++row) {
        const at::Tensor* tensor = walkable_tensor(PyList_GET_ITEM(items, row));
        if (tensor == nullptr) {
          Py_RETURN_FALSE;
        }
        const int64_t length = tensor->numel();
        if (column == 0) {
          if (length == 0) {
            Py_RETURN_FALSE;
          }
          lengths[row] = length;
        } else if (length != lengths[row]) {
          Py_RETURN_FALSE;
        }
      }
    }
    for (Py_ssize_t column = scalars; column < count; ++column) {
      PyObject* items;
      if (!list_of(lists, column, rows, &items)) {
        Py_RETURN_FALSE;
      }
      for (Py_ssize_t row = 0; row < rows; ++row) {
        PyObject* item = PyList_GET_ITEM(items, row);
        if (!THPVariable_Check(item)) {
          continue;
        }
        const at::Tensor* tensor = plain_tensor(item);
        if (tensor == nullptr || tensor->numel() != 1 || tensor->const_data_ptr() == nullptr) {
          Py_RETURN_FALSE;
        }
      }
    }
  } catch (const std::exception& error) {
    PyErr_SetString(PyExc_RuntimeError, error.what());
    return nullptr;
  }
  Py_RETURN_TRUE;
}

// fill(columns, table, lengths, order) -> None: _native.address_table into caller-owned int64
// buffers (addresses): one row per tensor of columns[0], largest first (ties keep the lists'
// order); a column of tensors holds their addresses, of ints their values, None zeros. The
// tensors are the ones `walkable` accepted (the caller's to ensure).
PyObject* fill(PyObject*, PyObject* args) {
  PyObject* columns;
  unsigned long long table_address, lengths_address, order_address;
  if (!PyArg_ParseTuple(args, "O!KKK", &PyList_Type, &columns, &table_address, &lengths_address,
                        &order_address)) {
    return nullptr;
  }
  auto* table = reinterpret_cast<int64_t*>(table_address);
  auto* lengths = reinterpret_cast<int64_t*>(lengths_address);
  auto* order = reinterpret_cast<int64_t*>(order_address);
  const Py_ssize_t width = PyList_GET_SIZE(columns);
  PyObject* first = width > 0 ? PyList_GET_ITEM(columns, 0) : Py_None;
  if (!PyList_Check(first)) {
    PyErr_SetString(PyExc_TypeError, "fill: columns[0] must be a list of tensors");
    return nullptr;
  }
  const Py_ssize_t rows = PyList_GET_SIZE(first);
  for (Py_ssize_t column = 0; column < width; ++column) {
    PyObject* items = PyList_GET_ITEM(columns, column);
    if (items != Py_None && (!PyList_Check(items) || PyList_GET_SIZE(items) != rows)) {
      PyErr_SetString(PyExc_ValueError, "fill: every column is None or a list as long as the first");
      return nullptr;
    }
  }
  try {
    std::vector<int64_t> numels(rows);
    for (Py_ssize_t row = 0; row < rows; ++row) {
      PyObject* item = PyList_GET_ITEM(first, row);
      if (!THPVariable_Check(item)) {
        PyErr_SetString(PyExc_TypeError, "fill: columns[0] must be a list of tensors");
        return nullptr;
      }
      numels[row] = THPVariable_Unpack(item).numel();
    }
    std::iota(order, order + rows, int64_t{0});
    std::stable_sort(order, order + rows,
                     [&](int64_t a, int64_t b) { return numels[a] > numels[b]; });
    for (Py_ssize_t row = 0; row < rows; ++row) {
      lengths[row] = numels[order[row]];
    }
    for (Py_ssize_t column = 0; column < width; ++column) {
      PyObject* items = PyList_GET_ITEM(columns, column);
      for (Py_ssize_t row = 0; row < rows; ++row) {
        int64_t value = 0;
        if (items != Py_None) {
          PyObject* item = PyList_GET_ITEM(items, order[row]);
          if (THPVariable_Check(item)) {
            value = reinterpret_cast<int64_t>(THPVariable_Unpack(item).const_data_ptr());
          } else {
            value = PyLong_AsLongLong(item);
            if (value == -1 && PyErr_Occurred()) {
              return nullptr;
            }
          }
        }
        table[row * width + column] = value;
      }
    }
  } catch (const std::exception& error) {
    PyErr_SetString(PyExc_RuntimeError, error.what());
    return nullptr;
  }
  Py_RETURN_NONE;
}

// advance(counter) -> bool: counter += 1 for a plain one-element int32 CPU tensor that autograd
// does not track, with its version bumped as an in-place op would; False (nothing done) for any
// other object, which the caller advances with a torch op.
PyObject* advance(PyObject*, PyObject* object) {
  PyTypeObject* type = Py_TYPE(object);
  if (std::find(plain_types.begin(), plain_types.end(), type) == plain_types.end()) {
    Py_RETURN_FALSE;
  }
  try {
    const at::Tensor& counter = THPVariable_Unpack(object);
    if (!counter.defined() || counter.layout() != at::kStrided ||
        counter.device().type() != at::kCPU || counter.scalar_type() != at::kInt ||
        counter.numel() != 1 || counter.requires_grad() || counter.is_inference() ||
        counter.const_data_ptr() == nullptr) {
      Py_RETURN_FALSE;
    }
    auto* value = static_cast<int32_t*>(counter.data_ptr());
    *value = static_cast<int32_t>(static_cast<uint32_t>(*value) + 1u);  // wraps as add_ does
    counter.unsafeGetTensorImpl()->bump_version();
  } catch (const std::exception& error) {
    PyErr_SetString(PyExc_RuntimeError, error.what());
    return nullptr;
  }
  Py_RETURN_TRUE;
}

// A plain float32 CPU tensor of one element with memory (an lr, read or written by address).
float* float_scalar(PyObject* object) {
  const at::Tensor* tensor = plain_tensor(object);
  if (tensor == nullptr || tensor->numel() != 1 || tensor->const_data_ptr() == nullptr) {
    return nullptr;
  }
  return static_cast<float*>(tensor->data_ptr());
}

// Whether an in-place write may bump the tensor's version (an inference tensor has none).
bool writable(PyObject* object) { return !THPVariable_Unpack(object).is_inference(); }

void bump_version(PyObject* object) {
  THPVariable_Unpack(object).unsafeGetTensorImpl()->bump_version();
}

// gather(table, step, out) -> bool: out = table[step] for a plain contiguous float32 CPU table of
// one dimension, a one-element int32 CPU step within it and a float32 CPU out of one element,
// out's version bumped; False (nothing done) otherwise, for the torch op to handle.
PyObject* gather(PyObject*, PyObject* args) {
  PyObject *table_object, *step_object, *out_object;
  if (!PyArg_ParseTuple(args, "OOO", &table_object, &step_object, &out_object)) {
    return nullptr;
  }
  try {
    const at::Tensor* table = walkable_tensor(table_object);
    float* out = float_scalar(out_object);
    PyTypeObject* type = Py_TYPE(step_object);
    if (table == nullptr || table->dim() != 1 || out == nullptr || !writable(out_object) ||
        std::find(plain_types.begin(), plain_types.end(), type) == plain_types.end()) {
      Py_RETURN_FALSE;
    }
    const at::Tensor& step = THPVariable_Unpack(step_object);
    if (!step.defined() || step.layout() != at::kStrided || step.device().type() != at::kCPU ||
        step.scalar_type() != at::kInt || step.numel() != 1 || step.const_data_ptr() == nullptr) {
      Py_RETURN_FALSE;
    }
    const int64_t index = *static_cast<const int32_t*>(step.const_data_ptr());
    if (index < 0 || index >= table->numel()) {
      Py_RETURN_FALSE;
    }
    *out = static_cast<const float*>(table->const_data_ptr())[index];
    bump_version(out_object);
  } catch (const std::exception& error) {
    PyErr_SetString(PyExc_RuntimeError, error.what());
    return nullptr;
  }
  Py_RETURN_TRUE;
}

// round_trip(lr, out) -> bool: out = (lr + 1) - 1 in float32 (MindSpore's static lr beside dynamic
// ones) for plain float32 CPU tensors of one element, out's version bumped; False otherwise.
PyObject* round_trip(PyObject*, PyObject* args) {
  PyObject *lr_object, *out_object;
  if (!PyArg_ParseTuple(args, "OO", &lr_object, &out_object)) {
    return nullptr;
  }
  try {
    const float* lr = float_scalar(lr_object);
    float* out = float_scalar(out_object);
    if (lr == nullptr || out == nullptr || !writable(out_object)) {
      Py_RETURN_FALSE;
    }
    const float plus_one = *lr + 1.0f;  // two float32 roundings, as the tensor ops round
    *out = plus_one - 1.0f;
    bump_version(out_object);
  } catch (const std::exception& error) {
    PyErr_SetString(PyExc_RuntimeError, error.what());
    return nullptr;
  }
  Py_RETURN_TRUE;
}

PyObject* set_plain_types(PyObject*, PyObject* types) {
  if (!PyTuple_Check(types)) {
    PyErr_SetString(PyExc_TypeError, "set_plain_types takes a tuple of types");
    return nullptr;
  }
  std::vector<PyTypeObject*> chosen;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(types); ++i) {
    PyObject* type = PyTuple_GET_ITEM(types, i);
    if (!PyType_Check(type)) {
      PyErr_SetString(PyExc_TypeError, "set_plain_types takes a tuple of types");
      return nullptr;
    }
    Py_INCREF(type);  // kept for the life of the process
    chosen.push_back(reinterpret_cast<PyTypeObject*>(type));
  }
  plain_types = chosen;
  Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"walkable", walkable, METH_VARARGS, "walkable(lists, walked, scalars) -> bool"},
    {"fill", fill, METH_VARARGS, "fill(columns, table, lengths, order) -> None"},
    {"advance", advance, METH_O, "advance(counter) -> bool"},
    {"gather", gather, METH_VARARGS, "gather(table, step, out) -> bool"},
    {"round_trip", round_trip, METH_VARARGS, "round_trip(lr, out) -> bool"},
    {"set_plain_types", set_plain_types, METH_O, "set_plain_types(types) -> None"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "msoptim_native_step", nullptr, -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit_msoptim_native_step() { return PyModule_Create(&module); }
