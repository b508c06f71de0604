"""Bad input gets an error naming the tensor, what was expected and what was received."""

import keras
import numpy as np
import pytest

import layers
import zoo


@pytest.fixture(scope="module")
def glow():
    model = zoo.make_glow((8, 8, 1), num_levels=2, steps_per_level=1, hidden_channels=8, n_bits=5)
    model.initialize(zoo.load_digits_images()[0][:64])
    return model


@pytest.fixture(scope="module")
def vector_model():
    return zoo.make_realnvp(2, num_couplings=2, hidden_units=8)


def _pixels(shape=(4, 8, 8, 1)):
    return np.random.default_rng(0).integers(0, 256, size=shape).astype("uint8")


def test_wrong_rank_names_tensor_and_shapes(glow):
    with pytest.raises(ValueError, match=r"`x` must have shape \(batch, 8, 8, 1\).*received shape \(batch, 8, 8\)"):
        glow.log_prob(_pixels((4, 8, 8)))


def test_wrong_channel_count(glow):
    with pytest.raises(ValueError, match=r"`x` must have shape \(batch, 8, 8, 1\).*received shape \(batch, 8, 8, 3\)"):
        glow.log_prob(_pixels((4, 8, 8, 3)))


def test_pixels_out_of_range(glow):
    bad = _pixels().astype("int32")
    bad[0, 0, 0, 0] = 300
    with pytest.raises(ValueError, match=r"`x` must hold whole numbers in \[0, 255\].*Received values in \[\d+, 300\]"):
        glow.log_prob(bad)
    bad[0, 0, 0, 0] = -1
    with pytest.raises(ValueError, match=r"Received values in \[-1, "):
        glow.bits_per_dim(bad)


def test_images_scaled_to_unit_interval_are_refused(glow):
    scaled = _pixels().astype("float32") / 255.0
    with pytest.raises(ValueError, match="non-integer values.*uint8 pixels"):
        glow.log_prob(scaled)


def test_nan_pixels_are_refused(glow):
    bad = _pixels().astype("float32")
    bad[1, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        glow.log_prob(bad)


def test_nan_vectors_are_refused(vector_model):
    bad = np.zeros((3, 2), "float32")
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"`x` contains 1 NaN or infinite value"):
        vector_model.log_prob(bad)


def test_wrong_vector_width(vector_model):
    with pytest.raises(ValueError, match=r"`x` must have shape \(batch, 2\).*received shape \(batch, 3\)"):
        vector_model.log_prob(np.zeros((3, 3), "float32"))


def test_bad_pixels_inside_fit_fail_the_step_with_the_message(glow):
    import tensorflow as tf

    bad = _pixels((64, 8, 8, 1)).astype("float32")
    bad[5, 0, 0, 0] = 256.0
    glow.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = [np.asarray(w) for w in glow.trainable_weights]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`x` must hold whole numbers in \[0, 255\]"):
        glow.fit(bad, batch_size=64, epochs=1, verbose=0)
    after = [np.asarray(w) for w in glow.trainable_weights]
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)  # nothing was learned from the bad batch


def test_decode_checks_the_latent(glow):
    with pytest.raises(ValueError, match=r"`latent` must have shape \(batch, 64\)"):
        glow.decode(np.zeros((2, 63), "float32"))
    with pytest.raises(ValueError, match="`latent` contains"):
        glow.decode(np.full((2, 64), np.nan, "float32"))


def test_sample_refuses_negative_temperature(glow):
    with pytest.raises(ValueError, match="temperature and noise_scale must be >= 0"):
        glow.sample(2, temperature=-1.0)


def test_layer_level_errors_name_the_problem():
    with pytest.raises(ValueError, match="divisible by 2; received height 5"):
        layers.Squeeze()(np.zeros((1, 5, 4, 1), "float32"))
    with pytest.raises(ValueError, match="at least 2 channels"):
        layers.AffineCoupling(8)(np.zeros((1, 4, 4, 1), "float32"))
    with pytest.raises(ValueError, match=r"whole numbers in \[0, 7\].*quantize_pixels"):
        layers.Dequantize(n_bits=3)(np.full((1, 4), 8.0, "float32"))
    with pytest.raises(ValueError, match="n_bits"):
        layers.Dequantize(n_bits=9)
    with pytest.raises(ValueError, match="permutation of range"):
        layers.Permute([0, 0, 1])(np.zeros((1, 3), "float32"))
    built = layers.ActNorm()
    built(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 3"):
        built(np.zeros((2, 4), "float32"))
