"""Class-conditional flows (issue 18): GLOW's class prior and the class-conditional NIF.

Closed forms against dense float64 references, a short fit per family on two
well-separated classes whose samples' class can be read off exactly, the
Bayes classifier, the class prior, saving, and the refusals of bad labels.
"""

import keras
import numpy as np
import pytest
from scipy import stats

import layers
import zoo
from zoo import training
from layers.testing import perturb_weights


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


# ----------------------------------------------------------------- closed forms (float64 references)
def test_class_conditional_normal_log_prob_and_generate_against_scipy():
    prior = layers.ClassConditionalNormal(3, dtype="float64")
    prior.build((None, 4))
    rng = np.random.default_rng(0)
    prior.class_means.assign(rng.standard_normal((3, 4)))
    prior.class_log_scales.assign(0.3 * rng.standard_normal((3, 4)))
    z = rng.standard_normal((6, 4))
    labels = np.array([0, 1, 2, 2, 1, 0])
    means, scales = _np(prior.class_means)[labels], np.exp(_np(prior.class_log_scales))[labels]
    expected = [stats.multivariate_normal(means[i], np.diag(scales[i] ** 2)).logpdf(z[i]) for i in range(6)]
    np.testing.assert_allclose(_np(prior.log_prob(z, labels=labels)), expected, rtol=1e-12)
    # generate: mu_y + t exp(s_y) eps, and sample = generate on the drawn noise.
    np.testing.assert_allclose(_np(prior.generate(z, temperature=0.5, labels=labels)), means + 0.5 * scales * z,
                               rtol=1e-12)
    drawn = layers.draw_noise(prior.noise_shapes, 6, 3, "float64")
    np.testing.assert_allclose(_np(prior.sample(6, seed=3, labels=labels)),
                               _np(prior.generate(*drawn, labels=labels)), rtol=1e-12)


def test_class_conditional_gaussian_nif_marginal_against_dense_covariance():
    nif = layers.GaussianNIF(2, seed=0, num_classes=3, dtype="float64")
    nif.build((None, 5))
    rng = np.random.default_rng(1)
    perturb_weights(nif, rng, scale=0.3)
    nif.class_means.assign(rng.standard_normal((3, 2)))
    a, b = _np(nif.a_matrix), _np(nif.bias)
    cov = a @ a.T + np.diag(np.exp(_np(nif.log_variance)))
    x = rng.standard_normal((4, 5))
    labels = np.array([2, 0, 1, 2])
    mu = _np(nif.class_means)[labels]
    expected = [stats.multivariate_normal(a @ mu[i] + b, cov).logpdf(x[i]) for i in range(4)]
    np.testing.assert_allclose(_np(nif.log_prob(x, labels=labels)), expected, rtol=1e-10)
    # The ELBO stays below the marginal of its own class, and on-manifold samples sit at A (mu_y + t eps) + b.
    assert np.all(_np(nif.elbo(x, labels=labels)) <= _np(nif.log_prob(x, labels=labels)) + 1e-9)
    eps = rng.standard_normal((4, 2))
    np.testing.assert_allclose(_np(nif.generate(eps, None, temperature=0.5, noise_scale=0.0, labels=labels)),
                               (mu + 0.5 * eps) @ a.T + b, rtol=1e-10)


# ----------------------------------------------------------------------------- two separated classes
def _two_clusters(n=512, seed=0):
    """Class 0 around (-3, -3), class 1 around (3, 3): the class of a point is the sign of x0 + x1."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).astype("int32")
    centres = np.where(labels[:, None] == 1, 3.0, -3.0)
    return (centres + 0.5 * rng.standard_normal((n, 2))).astype("float32"), labels


def _side(points):
    return (points.sum(axis=-1) > 0).astype("int32")


@pytest.mark.parametrize("family", ["nf", "nif"])
def test_short_fit_on_two_classes_samples_the_asked_class_and_classifies(family):
    keras.utils.set_random_seed(0)
    x, labels = _two_clusters()
    if family == "nf":
        model = zoo.make_realnvp(2, num_couplings=4, hidden_units=32, num_classes=2)
    else:
        model = zoo.make_vector_nif(2, 1, num_couplings=4, hidden_units=32, num_classes=2)
    assert model.describe()["num_classes"] == 2
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(x, labels, batch_size=64, epochs=25, verbose=0, validation_data=(x[:128], labels[:128]))
    assert history.history["loss"][-1] < history.history["loss"][0] - 0.5
    assert "val_loss" in history.history
    for k in (0, 1):
        kwargs = {"noise_scale": 0.0} if family == "nif" else {}
        samples = _np(model.sample(200, temperature=0.7, seed=k, labels=k, **kwargs))
        assert np.mean(_side(samples) == k) > 0.97, (family, k)
    predicted, log_posterior = model.classify(x, return_log_posterior=True)
    assert np.mean(predicted == labels) > 0.97
    np.testing.assert_allclose(np.exp(log_posterior).sum(-1), 1.0, rtol=1e-6)
    # The class prior is the training labels' frequencies, and classify = argmax of log p(x|y) + log p(y).
    np.testing.assert_allclose(np.exp(model.class_log_prior), np.bincount(labels) / len(labels), rtol=1e-6)
    joint = _np(model.class_log_likelihoods(x[:8])) + model.class_log_prior
    np.testing.assert_array_equal(model.classify(x[:8]), joint.argmax(-1))
    # log p(x | y) from class_log_likelihoods equals log_prob with that label.
    np.testing.assert_allclose(_np(model.class_log_likelihoods(x[:8]))[:, 1], _np(model.log_prob(x[:8], labels=1)),
                               rtol=1e-5, atol=1e-5)
    # evaluate takes the labels too; its loss is the conditional NLL in bits/dim.
    loss = model.evaluate(x[:128], labels[:128], verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(loss, float(np.mean(_np(model.bits_per_dim(x[:128], labels=labels[:128])))), rtol=1e-4)


def test_conditional_glow_on_pixels_trains_with_a_dataset_and_reloads(tmp_path):
    """Dark vs bright 4x4 images: the class-conditional GLOW's samples of each class have its brightness."""
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 256).astype("int32")
    images = np.where(labels[:, None, None, None] == 1, 200, 40) + rng.integers(-20, 21, (256, 4, 4, 1))
    images = images.astype("uint8")
    model = zoo.make_glow((4, 4, 1), num_levels=1, steps_per_level=2, hidden_channels=16, n_bits=5, num_classes=2)
    model.compile(optimizer=keras.optimizers.Adam(5e-3))
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(64)
    model.fit(dataset, epochs=30, verbose=0)
    for k, (low, high) in enumerate([(0, 100), (140, 255)]):
        brightness = _np(model.sample(64, temperature=0.7, seed=k, labels=k)).reshape(64, -1).mean(-1)
        assert np.mean((brightness >= low) & (brightness <= high)) > 0.95, (k, brightness)
    assert np.mean(model.classify(images) == labels) > 0.97
    path = str(tmp_path / "conditional.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.num_classes == 2
    np.testing.assert_allclose(_np(loaded.class_log_likelihoods(images[:8])),
                               _np(model.class_log_likelihoods(images[:8])), rtol=1e-5)
    np.testing.assert_allclose(loaded.class_log_prior, model.class_log_prior)


# --------------------------------------------------------------------------------------- refusals
@pytest.fixture(scope="module")
def conditional():
    return zoo.make_realnvp(2, num_couplings=2, hidden_units=8, num_classes=3)


@pytest.mark.parametrize("labels, message", [
    (np.array([0.0, 1.0, 2.0, 1.0]), "integer class indices"),
    (np.array([[0], [1], [2], [1]]), "shape \\(batch,\\)"),
    (np.eye(3, dtype="int32")[[0, 1, 2, 1]], "shape \\(batch,\\)"),
    (np.array([0, 1, 3, 1]), "\\[0, 2\\]"),
    (np.array([0, -1, 2, 1]), "\\[0, 2\\]"),
    (np.array([0, 1, 2]), "3 labels for 4 examples"),
    (None, "needs `labels"),
])
def test_bad_labels_get_clear_errors(conditional, labels, message):
    x = np.zeros((4, 2), "float32")
    with pytest.raises(ValueError, match=message):
        conditional.log_prob(x, labels=labels)


def test_conditional_and_unconditional_refuse_what_they_cannot_use(conditional):
    x = np.zeros((4, 2), "float32")
    with pytest.raises(ValueError, match="pass the labels"):
        conditional.fit(x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="needs `labels="):
        conditional.sample(4, seed=0)
    with pytest.raises(ValueError, match="\\[0, 2\\]"):
        conditional.sample(4, seed=0, labels=5)
    plain = zoo.make_realnvp(2, num_couplings=2, hidden_units=8)
    assert plain.num_classes is None and plain.describe()["num_classes"] is None
    for call in (lambda: plain.sample(4, seed=0, labels=1), lambda: plain.log_prob(x, labels=np.zeros(4, "int32"))):
        with pytest.raises(ValueError, match="not class-conditional"):
            call()
    with pytest.raises(ValueError, match="not class-conditional"):
        plain.classify(x)
    with pytest.raises(ValueError, match="num_classes"):
        layers.ClassConditionalNormal(1)


def test_exports_of_a_class_conditional_model_take_labels(tmp_path):
    """SavedModel: labels in log_prob / bits_per_dim / sample / generate, a classify signature; LiteRT: a label per
    sample. Both agree with the Keras model; bad labels fail the call."""
    import tensorflow as tf

    import export

    keras.utils.set_random_seed(0)
    model = zoo.make_nif((4, 4, 1), latent_dim=3, num_levels=1, steps_per_level=1, hidden_channels=4, n_bits=5,
                         num_classes=3)
    rng = np.random.default_rng(0)
    images = (rng.integers(0, 32, (6, 4, 4, 1)) * 8).astype("uint8")
    labels = np.array([0, 1, 2, 2, 1, 0], "int32")
    model.set_class_prior([0, 1, 1, 2])  # p(y) = (1/4, 1/2, 1/4): classify must use it
    model.initialize(images)
    perturb_weights(model.prior, rng, scale=0.5)
    loaded = tf.saved_model.load(export.saved_model(model, str(tmp_path / "saved")))
    np.testing.assert_allclose(loaded.signatures["log_prob"](x=images, labels=labels)["log_prob"].numpy(),
                               _np(model.log_prob(images, labels=labels)), rtol=1e-5, atol=1e-4)
    classified = loaded.signatures["classify"](x=images)
    predicted, posterior = model.classify(images, return_log_posterior=True)
    np.testing.assert_array_equal(classified["label"].numpy(), predicted)
    np.testing.assert_allclose(classified["log_posterior"].numpy(), posterior, rtol=1e-4, atol=1e-4)
    drawn = loaded.signatures["sample"](num_samples=tf.constant(3), labels=tf.constant([2, 0, 1]),
                                        temperature=tf.constant(0.8), noise_scale=tf.constant(0.0),
                                        seed=tf.constant(5, tf.int64))["images"].numpy()
    np.testing.assert_array_equal(drawn, _np(model.sample(3, temperature=0.8, noise_scale=0.0, seed=5,
                                                          labels=np.array([2, 0, 1]))))
    for bad, message in (([0, 1], "one label per example"), ([0, 1, 7], "\\[0, 2\\]")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            loaded.signatures["sample"](num_samples=tf.constant(3), labels=tf.constant(bad),
                                        temperature=tf.constant(1.0), noise_scale=tf.constant(0.0),
                                        seed=tf.constant(0, tf.int64))
    info = export.tflite_sampler(model, str(tmp_path / "s.tflite"), batch_size=3)
    runner = tf.lite.Interpreter(model_path=info["path"]).get_signature_runner("generate")
    noise = [np.asarray(n) for n in layers.draw_noise(model.noise_shapes, 3, 1)]
    out = runner(latent_noise=noise[0], observation_noise=noise[1], labels=np.array([1, 2, 0], "int32"),
                 temperature=np.float32(1.0), noise_scale=np.float32(0.0))["images_float"]
    np.testing.assert_allclose(out, _np(model.generate(*noise, noise_scale=0.0, output="float",
                                                       labels=np.array([1, 2, 0]))), atol=2e-5)


def test_bad_labels_in_a_graph_step_fail_the_step(conditional):
    """Labels out of range inside fit (a TensorFlow graph) stop training with the message, not wrong numbers."""
    import tensorflow as tf

    model = zoo.make_realnvp(2, num_couplings=2, hidden_units=8, num_classes=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = np.zeros((8, 2), "float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, np.array([0, 1, 2, 7, 0, 1, 2, 0], "int64"))).batch(4)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="\\[0, 2\\]"):
        model.fit(dataset, epochs=1, verbose=0)


def test_zoo_train_reads_the_labels_of_a_named_dataset_and_resumes(tmp_path):
    """zoo.train on a class-conditional preset: labels in the epoch order, p(y) from the whole split, exact resume."""
    overrides = {"steps_per_level": 1, "hidden_channels": 8}
    kwargs = dict(model="nf_digits_conditional", dataset="digits", epochs=2, batch_size=32, out=str(tmp_path / "run"),
                  model_overrides=overrides, checkpoint_every=0, sample_every=1, verbose=0)
    result = training.train(**kwargs)
    model = result.model
    train_labels = training.load_training_data("digits", "train", labels=True)[1]
    np.testing.assert_allclose(np.exp(model.class_log_prior), np.bincount(train_labels, minlength=10) / len(train_labels),
                               rtol=1e-6)
    assert np.isfinite(result.history[-1]["val_loss"]) and (tmp_path / "run" / "samples" / "epoch_0002.png").exists()
    # The final preset directory reloads as a conditional model with its class prior.
    reloaded = zoo.get(str(tmp_path / "run" / "final"))
    assert reloaded.num_classes == 10
    np.testing.assert_allclose(reloaded.class_log_prior, model.class_log_prior)
    # A run that crashes mid-epoch (after a checkpoint) and resumes ends with the uninterrupted run's weights.

    class Crash(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 30:
                raise RuntimeError("simulated crash")

    crashed = dict(kwargs, out=str(tmp_path / "crashed"), checkpoint_every=20)
    with pytest.raises(RuntimeError, match="simulated crash"):
        training.train(**crashed, callbacks=[Crash()])
    resumed = training.train(**crashed, resume=True).model
    for a, b in zip(resumed.weights, model.weights):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="synthetic manifold without class labels"):
        training.train(model="nf_digits_conditional", dataset="sin", epochs=1, out=str(tmp_path / "sin"), verbose=0)
    with pytest.raises(ValueError, match="reads its labels from a named dataset"):
        training.train(model="nf_digits_conditional", dataset=zoo.load_digits_images()[0], epochs=1, out=str(tmp_path / "arr"),
                       model_overrides=overrides, verbose=0)


# ------------------------------------------------------------------ post-hoc per-class priors (autoencoders)
def test_class_conditional_mixture_against_scipy_and_samples_from_the_asked_class():
    rng = np.random.default_rng(0)
    prior = layers.GaussianMixturePrior(3, num_components=2, num_classes=3)
    prior.build()
    latents = np.concatenate([rng.standard_normal((200, 3)) * (c + 1) + 5 * c for c in range(3)]).astype("float32")
    labels = np.repeat(np.arange(3), 200).astype("int32")
    info = prior.fit(latents, labels=labels)
    assert len(info["per_class"]) == 3 and [c["examples"] for c in info["per_class"]] == [200, 200, 200]
    weights = np.exp(_np(prior.logits).astype(np.float64))
    means, chol = _np(prior.means).astype(np.float64), _np(prior.scale_tril).astype(np.float64)
    z, y = latents[::20].astype(np.float64), labels[::20]
    expected = [np.log(sum(weights[c, k] / weights[c].sum()
                           * stats.multivariate_normal(means[c, k], chol[c, k] @ chol[c, k].T).pdf(zi)
                           for k in range(2))) for zi, c in zip(z, y)]
    np.testing.assert_allclose(_np(prior.log_prob(z, labels=y)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(prior.log_prob_ops(z, labels=y)), expected, rtol=1e-5, atol=1e-5)
    drawn = _np(prior.sample(2000, seed=0, labels=np.full(2000, 2, np.int32)))
    np.testing.assert_allclose(drawn.mean(0), latents[labels == 2].mean(0), atol=0.3)
    with pytest.raises(ValueError, match="needs `labels`"):
        prior.log_prob(z)
    with pytest.raises(ValueError, match="at least 2 encoded examples of class 1"):
        prior.fit(latents[:201], labels=labels[:201])


def _two_image_classes(n=512, seed=0):
    """8x8 images: class 0 bright in the top half, class 1 in the bottom half (the brighter half is the class)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).astype("int32")
    images = rng.integers(0, 40, (n, 8, 8, 1))
    rows = np.arange(8)[None, :, None, None]
    bright = np.where(labels[:, None, None, None] == 0, rows < 4, rows >= 4)
    return np.where(bright, 215 + images, images).astype("uint8"), labels


def _brighter_half(images):
    images = np.asarray(images, np.float64)
    return (images[:, 4:].mean(axis=(1, 2, 3)) > images[:, :4].mean(axis=(1, 2, 3))).astype("int32")


def test_conditional_injflow_fits_per_class_priors_samples_the_asked_class_and_classifies():
    keras.utils.set_random_seed(0)
    images, labels = _two_image_classes()
    model = zoo.get("injflow_digits_conditional_8", num_classes=2, hidden_channels=4)
    assert model.num_classes == 2 and model.describe()["num_classes"] == 2
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(images, labels, batch_size=64, epochs=4, verbose=0)
    np.testing.assert_allclose(np.exp(model.class_log_prior), np.bincount(labels) / len(labels))
    with pytest.raises(ValueError, match="pass the images' labels"):
        model.fit_priors(images)
    info = model.fit_priors(images, labels=labels)
    assert len(info["gmm"]["per_class"]) == 2
    for k in (0, 1):
        assert np.mean(_brighter_half(model.sample(64, seed=k, labels=k)) == k) >= 0.95
        assert np.mean(_brighter_half(model.sample(64, seed=k, labels=k, prior="gaussian")) == k) >= 0.95
    test_images, test_labels = _two_image_classes(128, seed=1)
    assert np.mean(model.classify(test_images) == test_labels) >= 0.95
    per_class = _np(model.class_log_likelihoods(test_images[:8]))
    np.testing.assert_allclose(per_class[:, 1], _np(model.log_prob(test_images[:8], labels=1)), rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="needs `labels=`"):
        model.sample(2, seed=0)


def test_conditional_deep_nif_samples_the_asked_class_and_classifies():
    """Deep NIF: the low-dimensional flow on z has a per-class base, so a class is a region of the manifold."""
    keras.utils.set_random_seed(0)
    images, labels = _two_image_classes()
    model = zoo.make_deep_nif((8, 8, 1), 2, num_levels=1, steps_per_level=2, hidden_channels=8,
                              latent_flow_couplings=2, latent_flow_hidden_units=16, latent_flow_hidden_layers=1,
                              num_classes=2)
    assert model.describe()["num_classes"] == 2
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(images, labels, batch_size=64, epochs=16, verbose=0)
    np.testing.assert_allclose(np.exp(model.class_log_prior), np.bincount(labels) / len(labels), rtol=1e-6)
    for k in (0, 1):
        samples = model.sample(64, seed=k, labels=k, temperature=0.7, noise_scale=0.0)
        assert np.mean(_brighter_half(samples) == k) >= 0.95, k
    test_images, test_labels = _two_image_classes(128, seed=1)
    assert np.mean(model.classify(test_images) == test_labels) >= 0.95
    per_class = _np(model.class_log_likelihoods(test_images[:8]))
    np.testing.assert_allclose(per_class[:, 0], _np(model.log_prob(test_images[:8], labels=0)), rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="labels"):
        model.log_prob(test_images[:2])


@pytest.mark.parametrize("mode", ["dnf", "mflow"])
def test_conditional_dnf_and_mflow_sample_the_asked_class_and_classify(mode):
    """DNF / M-flow: the inner flow on u has a per-class base; M-flow trains it in its density phase."""
    keras.utils.set_random_seed(0)
    x, labels = _two_clusters()
    model = zoo.make_vector_dnf(2, 1, mode=mode, num_couplings=3, hidden_units=32, inner_couplings=2,
                                coupling="affine", seed=0, num_classes=2)
    assert model.describe()["num_classes"] == 2
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    if mode == "mflow":
        model.fit(x, labels, batch_size=64, epochs=10, verbose=0)
        before = _np(model.prior.class_base.class_means).copy()
        model.phase = "density"
        model.fit(x, labels, batch_size=64, epochs=15, verbose=0)
        assert not np.allclose(_np(model.prior.class_base.class_means), before)  # the density phase trains it
    else:
        model.fit(x, labels, batch_size=64, epochs=25, verbose=0)
    for k in (0, 1):
        assert np.mean(_side(_np(model.sample(200, seed=k, labels=k, temperature=0.7))) == k) > 0.97, (mode, k)
    assert np.mean(model.classify(x) == labels) > 0.97
    np.testing.assert_allclose(_np(model.class_log_likelihoods(x[:8]))[:, 1], _np(model.log_prob(x[:8], labels=1)),
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="labels"):
        model.sample(2, seed=0)
