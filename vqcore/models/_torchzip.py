"""Read PyTorch ``.pt`` / ``.pth`` / ``.ckpt`` files without torch and without running them.

``torch.save`` writes a zip archive: ``<name>/data.pkl`` is a pickle of the
saved object (a state dict, or a checkpoint nesting one) in which every tensor
is a call to a rebuild function (``torch._utils._rebuild_tensor_v2(storage,
offset, shape, stride, ...)``) and every storage a *persistent id*
``("storage", torch.FloatStorage, key, location, numel)`` whose bytes are the
archive member ``<name>/data/<key>``; ``<name>/byteorder`` says how they are
stored.

Unpickling normally looks up and calls whatever the pickle names, so loading
an untrusted checkpoint with plain ``pickle`` (or ``torch.load`` without
``weights_only``) runs arbitrary code. Here, as in PyTorch's own
``torch/_weights_only_unpickler.py``, :meth:`_Unpickler.find_class` answers
only an allow-list of names, and it never returns the object it is asked
for: each allowed name maps to an inert stand-in of this module (the rebuild
functions build a :class:`TensorRef` that records dtype, shape, strides and
storage offset; storage types are markers; ``OrderedDict`` is a dict;
``argparse.Namespace``, which training scripts save next to the weights, is
a record). Any other name is a :class:`~vqcore.exceptions.DataError` naming
it, raised while the pickle is read, before anything it describes is built.

Tensor data is read only when :meth:`TensorRef.numpy` is called, and only
after the shape, strides and offset were checked to fit the storage and the
sizes against the caps: a header claiming 10^12 values is refused before
anything is allocated.
"""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np

from ..exceptions import DataError

#: Largest ``data.pkl`` read (the pickle holds names and shapes, not tensor data).
MAX_PICKLE_BYTES = 64 * 2**20
#: Largest number of archive members.
MAX_MEMBERS = 100_000
_MAX_DIMS = 16

# torch's legacy (non-zip) format starts with a protocol-2 pickle of this magic number
_LEGACY_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")

# storage class -> numpy dtype of its elements (stored little-endian unless 'byteorder' says big)
_STORAGE_DTYPES = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "BFloat16Storage": "bf16",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "b1",
    "UntypedStorage": "u1",
}
_TORCH_DTYPES = {
    "float64": "f8", "double": "f8", "float32": "f4", "float": "f4", "float16": "f2", "half": "f2",
    "bfloat16": "bf16", "int64": "i8", "long": "i8", "int32": "i4", "int": "i4", "int16": "i2",
    "short": "i2", "int8": "i1", "uint8": "u1", "bool": "b1",
}
ITEMSIZE = {"f8": 8, "f4": 4, "f2": 2, "bf16": 2, "i8": 8, "i4": 4, "i2": 2, "i1": 1, "u1": 1, "b1": 1}
DTYPE_NAMES = {"f8": "float64", "f4": "float32", "f2": "float16", "bf16": "bfloat16", "i8": "int64",
               "i4": "int32", "i2": "int16", "i1": "int8", "u1": "uint8", "b1": "bool"}


def bfloat16_to_float32(raw_u16):
    """bfloat16 values (their uint16 bit patterns) as float32: the top half of a float32."""
    return (raw_u16.astype(np.uint32) << np.uint32(16)).view(np.float32)


# ---------------------------------------------------------------------------
# stand-ins returned by find_class: inert, of this module, never torch's


class _Sealed:
    """A stand-in the pickle may not modify: BUILD (``__setstate__``) on it is refused.

    Without this, a pickle could set a checked TensorRef's shape or offset
    after :meth:`_Archive.rebuild` validated them, and make the reader view
    memory outside the storage.
    """

    __slots__ = ()

    def __setstate__(self, state):
        raise DataError(f"the pickle tries to change a {type(self).__name__.lstrip('_')} after it was built "
                        "(a BUILD instruction), which current torch.save files do not hold; the file was refused.")


class _StorageType(_Sealed):
    def __init__(self, name, code):
        self.name, self.code = name, code

    def __repr__(self):
        return f"torch.{self.name}"


class _TorchDtype(_Sealed):
    def __init__(self, name, code):
        self.name, self.code = name, code


def _no_dunder(obj, name, value):
    if name.startswith("__"):
        raise DataError(f"the pickle tries to set {str(name)[:40]} on a {type(obj).__name__.lstrip('_')} (a BUILD "
                        "instruction), which no checkpoint needs; the file was refused.")
    object.__setattr__(obj, name, value)


class _Dict(dict):
    """Stand-in for collections.OrderedDict (a state dict may carry ``_metadata`` by BUILD)."""

    __setattr__ = _no_dunder


class Record:
    """Stand-in for argparse.Namespace: attributes set by the pickle's BUILD, nothing else."""

    __setattr__ = _no_dunder


class _TensorType(_Sealed):
    """Stand-in for torch.Tensor / torch.nn.Parameter (named by ``_rebuild_from_type_v2``)."""

    def __init__(self, name):
        self.name = name


class _Storage(_Sealed):
    """A storage named by a persistent id: which archive member, which dtype, how many elements."""

    def __init__(self, archive, key, code, numel):
        self.archive, self.key, self.code, self.numel = archive, key, code, numel


class TensorRef(_Sealed):
    """A tensor of the checkpoint, checked but not read: ``shape``, ``dtype`` and :meth:`numpy`."""

    def __init__(self, storage, offset, shape, stride, code=None):
        self.storage, self.offset = storage, offset
        self.shape, self.stride = shape, stride
        self.code = code or storage.code

    @property
    def dtype(self):
        return DTYPE_NAMES[self.code]

    @property
    def size(self):
        n = 1
        for s in self.shape:
            n *= s
        return n

    def numpy(self):
        """The tensor as a C-contiguous numpy array (bfloat16 becomes float32)."""
        return self.storage.archive.tensor(self)

    def __repr__(self):
        return f"TensorRef({self.dtype}, shape={self.shape})"


def _refuse(what, detail):
    raise DataError(f"{what}: {detail}")


def _check_ints(value, name, what, *, length=None):
    if isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, tuple) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        _refuse(what, f"a tensor's {name} is {type(value).__name__} {str(value)[:60]}, not a tuple of integers; "
                      "the file is corrupt or was not written by torch.save.")
    if len(value) > _MAX_DIMS or (length is not None and len(value) != length):
        _refuse(what, f"a tensor's {name} {value} has the wrong number of dimensions; the file is corrupt.")
    return value


class _Archive:
    """The zip archive of one torch.save file: reads storages on demand, within the caps."""

    def __init__(self, zf, prefix, big_endian, max_bytes, max_elements, what):
        self.zf, self.prefix, self.big_endian = zf, prefix, big_endian
        self.max_bytes, self.max_elements, self.what = max_bytes, max_elements, what
        self.storages = {}
        self.cache = {}

    # -- built while unpickling -------------------------------------------
    def storage(self, pid):
        if not isinstance(pid, tuple) or len(pid) != 5:
            _refuse(self.what, f"the pickle holds a persistent id {str(pid)[:80]} that is not a torch storage; "
                               "nothing was loaded.")
        tag, stype, key, _location, numel = pid
        if isinstance(tag, bytes):
            tag = tag.decode("ascii", "replace")
        if tag != "storage" or not isinstance(stype, _StorageType):
            _refuse(self.what, f"the pickle refers to an external object {tag!r} of type {stype!r}, which is not "
                               "a torch storage; nothing was loaded.")
        if not isinstance(key, str) or not key or "/" in key or ".." in key:
            _refuse(self.what, f"a storage key {key!r} is not a plain archive name; the file is corrupt.")
        if not isinstance(numel, int) or isinstance(numel, bool) or numel < 0:
            _refuse(self.what, f"storage {key!r} declares {numel!r} elements; the file is corrupt.")
        if numel > self.max_elements or numel * ITEMSIZE[stype.code] > self.max_bytes:
            _refuse(self.what, f"storage {key!r} declares {numel:,} elements of {DTYPE_NAMES[stype.code]}, above "
                               f"the limit of {self.max_elements:,} values / {self.max_bytes:,} bytes; it was not "
                               "read. Save only the quantizer's state dict.")
        known = self.storages.get(key)
        if known is not None:
            return known
        st = _Storage(self, key, stype.code, numel)
        self.storages[key] = st
        return st

    def rebuild(self, storage, offset, shape, stride, code=None):
        what = self.what
        if not isinstance(storage, _Storage):
            _refuse(what, "a tensor is built from something that is not a storage of the archive; the file is "
                          "corrupt or hostile, and nothing was loaded.")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            _refuse(what, f"a tensor has storage offset {offset!r}; the file is corrupt.")
        shape = _check_ints(shape, "shape", what)
        stride = _check_ints(stride, "stride", what, length=len(shape))
        if any(s < 0 for s in shape) or any(s < 0 for s in stride):
            _refuse(what, f"a tensor has a negative size or stride (shape {shape}, stride {stride}); "
                          "the file is corrupt.")
        code = code or storage.code
        if code != storage.code and storage.code != "u1":
            _refuse(what, f"a {DTYPE_NAMES[code]} tensor is built on a {DTYPE_NAMES[storage.code]} storage; "
                          "the file is corrupt.")
        numel = 1
        for s in shape:
            numel *= s
        if numel > self.max_elements or numel * ITEMSIZE[code] > self.max_bytes:
            _refuse(what, f"a tensor declares shape {shape} = {numel:,} values, above the limit of "
                          f"{self.max_elements:,} values / {self.max_bytes:,} bytes; nothing was allocated. "
                          "A quantizer's codebooks are far smaller: save only its state dict.")
        available = storage.numel * ITEMSIZE[storage.code] // ITEMSIZE[code]
        if numel:
            last = offset + sum((n - 1) * s for n, s in zip(shape, stride))
            if last >= available:
                _refuse(what, f"a tensor of shape {shape} with stride {stride} at offset {offset} reaches element "
                              f"{last:,} of storage {storage.key!r}, which holds {available:,}: the shape does not "
                              "fit its storage (the file is corrupt or was edited).")
        return TensorRef(storage, offset, shape, stride, code)

    # -- reading data --------------------------------------------------------
    def _storage_array(self, st, code):
        key = (st.key, code)
        if key in self.cache:
            return self.cache[key]
        name = f"{self.prefix}data/{st.key}"
        nbytes = st.numel * ITEMSIZE[st.code]
        try:
            info = self.zf.getinfo(name)
        except KeyError:
            _refuse(self.what, f"the archive has no member {name!r} for a storage the pickle names; the file is "
                               "truncated or corrupt.")
        if info.file_size != nbytes:
            _refuse(self.what, f"member {name!r} holds {info.file_size:,} bytes but its storage declares {nbytes:,} "
                               f"({st.numel:,} x {DTYPE_NAMES[st.code]}); the file is corrupt.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
            _refuse(self.what, f"member {name!r} uses an unsupported zip compression or encryption.")
        try:
            with self.zf.open(info) as f:
                raw = f.read(nbytes)  # never more than declared; zipfile checks the CRC at the end
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            _refuse(self.what, f"member {name!r} could not be read ({exc}); the file is truncated or corrupt.")
        if len(raw) != nbytes:
            _refuse(self.what, f"member {name!r} is truncated ({len(raw):,} of {nbytes:,} bytes).")
        order = ">" if self.big_endian else "<"
        if code == "bf16":
            arr = bfloat16_to_float32(np.frombuffer(raw, dtype=order + "u2"))
        elif code == "b1":
            arr = np.frombuffer(raw, dtype=np.uint8).astype(bool)
        else:
            arr = np.frombuffer(raw, dtype=order + code).astype(code, copy=False)
        self.cache[key] = arr
        return arr

    def tensor(self, ref):
        if type(ref) is not TensorRef or type(ref.storage) is not _Storage or ref.storage.archive is not self:
            _refuse(self.what, "a tensor is not one this archive built; the file was refused.")
        self.rebuild(ref.storage, ref.offset, ref.shape, ref.stride, ref.code)  # the same checks again
        flat = self._storage_array(ref.storage, ref.code)
        if ref.size == 0:
            return np.zeros(ref.shape, dtype=flat.dtype)
        last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride))
        # checked at rebuild already; never view past the storage whatever happened since
        if ref.offset < 0 or min(ref.stride, default=0) < 0 or last >= flat.size:
            _refuse(self.what, "a tensor does not fit its storage; the file is corrupt.")
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[ref.offset:], shape=ref.shape, strides=tuple(s * itemsize for s in ref.stride), writeable=False
        )
        return np.ascontiguousarray(view)


def _rebuild_functions(archive):
    """The allowed tensor-rebuild functions, as stand-ins that only record and check."""

    def rebuild_tensor(storage, storage_offset, size, stride, *_):
        return archive.rebuild(storage, storage_offset, size, stride)

    def rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, *_):
        if not isinstance(dtype, _TorchDtype):
            _refuse(archive.what, "a tensor names a dtype that is not a torch dtype; the file is corrupt.")
        return archive.rebuild(storage, storage_offset, size, stride, dtype.code)

    def rebuild_parameter(data, *_):
        if not isinstance(data, TensorRef):
            _refuse(archive.what, "a parameter wraps something that is not a tensor; nothing was loaded.")
        return data

    def rebuild_from_type_v2(func, new_type, args, state):
        if func not in allowed or not isinstance(new_type, _TensorType) or not isinstance(args, tuple):
            _refuse(archive.what, "a tensor subclass is rebuilt by a function that is not one of torch's tensor "
                                  "rebuild functions; nothing was called.")
        return func(*args)

    allowed = {rebuild_tensor, rebuild_tensor_v3, rebuild_parameter}
    return {
        ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v3"): rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type_v2,
    }


_UNSUPPORTED_TENSORS = {
    "_rebuild_qtensor": "a quantized (int8) tensor",
    "_rebuild_sparse_tensor": "a sparse tensor",
    "_rebuild_nested_tensor": "a nested tensor",
    "_rebuild_meta_tensor_no_storage": "a tensor without data (meta device)",
    "_rebuild_wrapper_subclass": "a tensor subclass",
    "_rebuild_device_tensor_from_numpy": "a tensor stored as a numpy array",
    "_rebuild_device_tensor_from_cpu_tensor": "a device tensor",
}


class _Unpickler(pickle.Unpickler):
    """A pickle reader that can build only tensors, storages and plain containers."""

    def __init__(self, file, archive):
        super().__init__(file)
        self.archive = archive
        self.allowed = _rebuild_functions(archive)
        for name, code in _STORAGE_DTYPES.items():
            self.allowed[("torch", name)] = _StorageType(name, code)
        for name, code in _TORCH_DTYPES.items():
            self.allowed[("torch", name)] = _TorchDtype(name, code)
        self.allowed.update({
            ("collections", "OrderedDict"): _Dict,
            ("argparse", "Namespace"): Record,
            ("torch", "Size"): tuple,
            ("torch", "Tensor"): _TensorType("Tensor"),
            ("torch.nn.parameter", "Parameter"): _TensorType("Parameter"),
            ("torch._tensor", "Tensor"): _TensorType("Tensor"),
        })

    def find_class(self, module, name):
        found = self.allowed.get((module, name))
        if found is not None:
            return found
        if module == "torch._utils" and name in _UNSUPPORTED_TENSORS:
            _refuse(self.archive.what, f"it holds {_UNSUPPORTED_TENSORS[name]} ({module}.{name}), which VQ Lens "
                                       "cannot read. Save the codebooks as plain float tensors.")
        _refuse(self.archive.what, f"the pickle names {str(module)[:80]}.{str(name)[:80]}, which is not a tensor, a "
                                   "storage or a plain container. VQ Lens refused it and ran nothing from the file "
                                   "(a checkpoint that names code can run it when loaded). Save only the weights: "
                                   "torch.save(model.state_dict(), path), or export them to .safetensors.")

    def persistent_load(self, pid):
        return self.archive.storage(pid)


def _find_record_prefix(zf, what):
    names = [i.filename for i in zf.infolist()]
    pkls = [n for n in names if n.endswith("data.pkl") and n.count("/") <= 1]
    if not pkls:
        if any(n.endswith("constants.pkl") or n.startswith("code/") or "/code/" in n for n in names):
            _refuse(what, "this is a TorchScript archive (torch.jit.save), not a state dict. Save the weights with "
                          "torch.save(model.state_dict(), path) instead.")
        _refuse(what, "the zip archive holds no data.pkl, so it is not a file written by torch.save. "
                      "Save the model with torch.save(model.state_dict(), path), or export .safetensors.")
    if len(pkls) > 1:
        _refuse(what, f"the archive holds several pickles ({', '.join(pkls[:4])}); expected one torch.save record.")
    return pkls[0][: -len("data.pkl")]


def read_torch_zip(data, *, max_bytes, max_elements, what):
    """The object saved by ``torch.save`` in ``data``, tensors as :class:`TensorRef`.

    Parameters
    ----------
    data : bytes
        The whole file.
    max_bytes, max_elements : int
        Caps on any one storage or tensor (and on the whole file, checked by
        the caller).
    what : str
        How messages name the file.

    Raises
    ------
    DataError
        Not a zip archive (a legacy torch file gets its own message), truncated,
        a pickle naming anything outside the allow-list, a tensor that does not
        fit its storage or is above the caps.
    """
    if data[:2] == b"\x80\x02" and _LEGACY_MAGIC in data[:16]:
        _refuse(what, "it was saved in PyTorch's legacy (non-zip) format, which VQ Lens does not read. Load it once "
                      "in PyTorch and save it again with torch.save(state_dict, path) (the zip format, default "
                      "since PyTorch 1.6), or export the tensors to .safetensors.")
    if data[:2] != b"PK":
        if data[:1] == b"\x80":
            _refuse(what, "it is a bare pickle, not a torch.save zip archive; VQ Lens never unpickles bare pickles. "
                          "Save the weights with torch.save(state_dict, path) or as .safetensors.")
        _refuse(what, "it is not a PyTorch checkpoint (a torch.save file is a zip archive starting with 'PK'). "
                      "Check the file, or export the codebooks to .safetensors or .npz.")
    try:
        # kept open (it reads from memory) for TensorRef.numpy, which reads a storage when asked
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        _refuse(what, "it is not a complete zip archive: the file is truncated or damaged. Upload it again.")
    if len(zf.infolist()) > MAX_MEMBERS:
        _refuse(what, f"the archive holds {len(zf.infolist()):,} members (limit {MAX_MEMBERS:,}).")
    prefix = _find_record_prefix(zf, what)
    order = b"little"
    if prefix + "byteorder" in zf.namelist():
        order = zf.read(prefix + "byteorder").strip()
        if order not in (b"little", b"big"):
            _refuse(what, f"its byteorder record is {order[:20]!r}, neither 'little' nor 'big'.")
    info = zf.getinfo(prefix + "data.pkl")
    if info.file_size > MAX_PICKLE_BYTES:
        _refuse(what, f"its data.pkl is {info.file_size:,} bytes (limit {MAX_PICKLE_BYTES:,}); a state dict's "
                      "pickle is small. Save only the quantizer's state dict.")
    try:
        with zf.open(info) as f:
            pkl = f.read(info.file_size)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        _refuse(what, f"its data.pkl could not be read ({exc}); the file is truncated or damaged.")
    archive = _Archive(zf, prefix, order == b"big", max_bytes, max_elements, what)
    try:
        obj = _Unpickler(io.BytesIO(pkl), archive).load()
    except DataError as exc:
        if str(exc).startswith(what):
            raise
        raise DataError(f"{what}: {exc}") from None
    except RecursionError:
        _refuse(what, "its pickle nests too deeply; the file is corrupt or hostile.")
    except Exception as exc:  # truncated or malformed pickle opcodes, wrong argument counts
        _refuse(what, f"its data.pkl is not a valid torch.save pickle ({type(exc).__name__}: {str(exc)[:160]}).")
    return obj
