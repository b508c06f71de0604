"""Injective flows (InjFlow, InjFlow-ln) and the regularized autoencoders: objectives, schedule, priors, API."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo import injflow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = dict(image_shape=(8, 8, 1), latent_dim=3, hidden_channels=2, encoder_strides=(1, 2, 1, 2, 1),
            decoder_strides=(2, 2, 1, 1, 1), kernel_size=3)


@pytest.fixture(scope="module")
def digits():
    return zoo.load_digits_images()[0]


def _warmed(model, images):
    """One eager training-mode pass (moving statistics away from their initial values) and perturbed weights."""
    model(images[:32], training=True)
    rng = np.random.default_rng(0)
    for w in model.trainable_weights:
        w.assign(w.numpy() + 0.05 * rng.standard_normal(w.shape).astype("float32"))
    return model


def test_issue_presets_are_registered():
    names = {p["name"]: p for p in zoo.registry.list_presets()}
    expected = ["injflow_mnist_32", "injflow_ln_mnist_32", "injflow_cifar10_128", "injflow_celeba_128",
                "injflow_ln_cifar10_128", "injflow_ln_celeba_128", "injflow_digits_8"]
    expected += [f"{f}_{d}_{k}" for f in ("ae", "ae_l2", "ae_sn", "cae", "vae", "beta_vae")
                 for d, k in (("mnist", 32), ("cifar10", 128), ("celeba", 128))]
    for name in expected:
        assert name in names, name
        assert names[name]["name"].endswith(f"_{names[name]['latent_dim']}")
    assert names["injflow_celeba_128"]["input_shape"] == (64, 64, 3)
    model = zoo.get("cae_cifar10_128", hidden_channels=2)
    assert model.example_shape == (32, 32, 3) and tuple(model.prior.latent_shape) == (128,)
    assert isinstance(zoo.get("ae_sn_mnist_32", hidden_channels=2).decoder.layers[0],
                      keras.layers.SpectralNormalization)


def test_short_fit_of_injflow_digits_lowers_the_loss_and_gmm_samples_are_finite_images(digits):
    keras.utils.set_random_seed(0)
    model = zoo.get("injflow_digits_8")
    x = digits[:512]

    def objective_at_step_zero():
        step = int(model.penalty_step.numpy())
        model.penalty_step.assign(0)  # compare the objective with the same penalty coefficients
        value = float(np.mean(model.objective(model(x, training=False))))
        model.penalty_step.assign(step)
        return value

    before = objective_at_step_zero()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(x, batch_size=64, epochs=3, verbose=0)
    assert int(model.penalty_step.numpy()) == 3 * 8
    assert objective_at_step_zero() < 0.5 * before
    assert history.history["loss"][-1] < history.history["loss"][0]
    info = model.fit_priors(x)
    assert model.gmm_prior.is_fitted and model.gaussian_prior.is_fitted and info["gmm"]["mean_log_likelihood"] < 1e6
    latents = model.gmm_prior.sample(64, seed=0)
    assert np.all(np.isfinite(model.decoder(latents, training=False).numpy()))
    samples = model.sample(64, seed=0)
    assert samples.dtype == "uint8" and samples.shape == (64, 8, 8, 1)
    assert len(np.unique(np.asarray(samples))) > 5  # images, not a constant
    floats = np.asarray(model.sample(64, seed=0, output="float", prior="gaussian"))
    assert np.all(np.isfinite(floats)) and floats.min() >= 0 and floats.max() <= 1
    np.testing.assert_array_equal(np.asarray(model.sample(8, seed=3)), np.asarray(model.sample(8, seed=3)))
    recon = np.asarray(model.reconstruct(x[:64]), np.float64)
    assert np.mean((recon - x[:64]) ** 2) < np.mean((x[:64] - x[:64].mean()) ** 2)


def test_fit_logs_the_reconstruction_mse_and_a_growing_penalty_monitors_it(digits):
    model = injflow.InjectiveFlow(penalty_growth=500.0, **TINY)
    assert model.monitor == "val_reconstruction_mse" and injflow.Autoencoder(**TINY).monitor == "val_loss"
    assert model.describe()["monitor"] == "val_reconstruction_mse"
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(digits[:64], batch_size=16, epochs=2, validation_data=(digits[64:96],), verbose=0).history
    for key in ("reconstruction_mse", "val_reconstruction_mse", "loss", "val_loss"):
        assert len(history[key]) == 2 and np.all(np.isfinite(history[key])), (key, history)
    # The logged validation value is the plain MSE of the final weights (no penalty coefficient in it).
    x_hat = model.decoder(model.encode(digits[64:96]), training=False).numpy().reshape(32, -1)
    np.testing.assert_allclose(history["val_reconstruction_mse"][-1],
                               np.mean((digits[64:96].reshape(32, -1) / 255.0 - x_hat) ** 2), rtol=1e-4)


def test_zoo_train_exports_the_best_epoch_by_the_monitor(tmp_path):
    result = zoo.train(model="injflow_digits_8", dataset="digits", epochs=3, batch_size=32, out=str(tmp_path / "run"),
                       num_examples=96, model_overrides={"penalty_growth": 300.0}, checkpoint_every=0, sample_every=0,
                       tensorboard=False, verbose=0)
    curve = [entry["val_reconstruction_mse"] for entry in result.history]
    assert all("val_loss" in entry and "reconstruction_mse" in entry for entry in result.history)
    with open(tmp_path / "run" / "best" / "metadata.json") as f:
        best = json.load(f)
    assert best["epoch"] == int(np.argmin(curve)) + 1 and best["val_reconstruction_mse"] == min(curve), (best, curve)


def test_penalty_schedule_survives_save_and_load(digits, tmp_path):
    model = injflow.InjectiveFlow(penalty_growth=500.0, name="schedule", **TINY)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)  # (graph mode: the test above)
    model.fit(digits[:48], batch_size=16, epochs=1, verbose=0)
    assert int(model.penalty_step.numpy()) == 3
    np.testing.assert_allclose(float(model.penalty_coefficient()), 1 + 3 * 500 / 1000)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert int(loaded.penalty_step.numpy()) == 3
    np.testing.assert_allclose(float(loaded.penalty_coefficient()), 2.5)
    for key, value in model(digits[:8]).items():
        np.testing.assert_allclose(np.asarray(loaded(digits[:8])[key]), np.asarray(value), rtol=1e-6)
    loaded.fit(digits[:32], batch_size=16, epochs=1, verbose=0)  # resuming continues the schedule
    assert int(loaded.penalty_step.numpy()) == 5
    model.save_weights(str(tmp_path / "m.weights.h5"))
    fresh = injflow.InjectiveFlow(penalty_growth=500.0, **TINY)
    fresh.load_weights(str(tmp_path / "m.weights.h5"))
    assert int(fresh.penalty_step.numpy()) == 3


@pytest.mark.parametrize("cls,kwargs", [
    (injflow.InjectiveFlow, dict(log_frobenius=True, jvp_method="finite_difference")),
    (injflow.Autoencoder, dict(decoder_weight_decay=0.1, spectral_norm=True, sampling_prior="gaussian")),
    (injflow.ContractiveAutoencoder, dict(contraction_weight=0.5)),
    (injflow.VariationalAutoencoder, dict(decoder_std=0.3)),
], ids=lambda p: getattr(p, "__name__", ""))
def test_keras_round_trip(cls, kwargs, digits, tmp_path):
    model = _warmed(cls(**TINY, **kwargs), digits)
    model.fit_priors(digits[:200])
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is cls and loaded.get_config() == model.get_config()
    x = digits[:6]
    if cls is injflow.InjectiveFlow:  # and through a self-describing preset directory
        again = zoo.get(model.save_to_preset(str(tmp_path / "preset"), {"data": "digits"}))
        np.testing.assert_allclose(np.asarray(again.log_prob(x)), np.asarray(model.log_prob(x)), rtol=1e-5)
    for fn in (lambda m: sum(m(x).values()), lambda m: m.encode(x), lambda m: m.log_prob(x),
               lambda m: m.decode(m.encode(x), output="float"), lambda m: m.sample(5, temperature=0.7, seed=1)):
        np.testing.assert_allclose(np.asarray(fn(loaded), np.float64), np.asarray(fn(model), np.float64),
                                   rtol=1e-5, atol=1e-5)


def _dense_decoder_jacobian(model, z):
    z = tf.convert_to_tensor(z)
    with tf.GradientTape() as tape:
        tape.watch(z)
        out = tf.reshape(model.decoder(z, training=False), (tf.shape(z)[0], -1))
    return tape.batch_jacobian(out, z).numpy().astype(np.float64)


@pytest.mark.parametrize("log_frobenius", [False, True])
def test_injflow_objective_against_a_dense_jacobian(log_frobenius, digits):
    model = _warmed(injflow.InjectiveFlow(log_frobenius=log_frobenius, prior_weight=0.3, eta=0.5, lam=2.0,
                                          penalty_growth=100.0, **TINY), digits)
    model.penalty_step.assign(7)
    x = digits[:5]
    terms = {k: v.numpy() for k, v in model.objective_terms(x, training=False).items()}
    x01 = x.reshape(5, -1).astype(np.float64) / 255
    z = model.encoder(x / 255.0, training=False).numpy().astype(np.float64)
    v = keras.random.normal((5, 3), seed=model.eval_seed).numpy().astype(np.float64)  # the evaluation draw
    jac = _dense_decoder_jacobian(model, z.astype("float32"))
    jv_sq, v_sq = np.sum(np.einsum("bij,bj->bi", jac, v) ** 2, 1), np.sum(v**2, 1)
    mu = 1 + 7 * 100 / 1000
    clipped = np.maximum(jv_sq, 0.25 * v_sq)
    x_hat = model.decoder(z.astype("float32"), training=False).numpy().reshape(5, -1)
    np.testing.assert_allclose(terms["prior"], 0.3 * np.sum(z**2, 1), rtol=1e-5)
    np.testing.assert_allclose(terms["reconstruction"], mu * np.sum((x01 - x_hat) ** 2, 1), rtol=1e-4)
    volume = 1.5 * np.log(clipped) if log_frobenius else clipped / 4.0
    np.testing.assert_allclose(terms["volume"], volume, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(terms["injectivity"], mu * np.minimum(np.sqrt(jv_sq / v_sq) - 0.5, 0) ** 2,
                               rtol=1e-4, atol=1e-7)
    # The diagnostic: the plain per-pixel MSE, without the penalty coefficient, and not part of the objective.
    np.testing.assert_allclose(terms["reconstruction_mse"], np.mean((x01 - x_hat) ** 2, 1), rtol=1e-4)
    objective = sum(value for key, value in terms.items() if key != "reconstruction_mse")
    np.testing.assert_allclose(model.objective(model(x)).numpy(), objective, rtol=1e-6)
    # Eq. 8 (finite differences) agrees with forward mode to O(epsilon).
    fd = injflow.InjectiveFlow.from_config({**model.get_config(), "jvp_method": "finite_difference"})
    fd.set_weights(model.get_weights())
    np.testing.assert_allclose(fd.objective_terms(x)["volume"].numpy(), terms["volume"], rtol=0.05)


def test_cae_and_vae_terms_against_dense_references(digits):
    import tensorflow_probability as tfp

    cae = _warmed(injflow.ContractiveAutoencoder(contraction_weight=0.7, **TINY), digits)
    x = digits[:4]
    u = keras.random.normal((4, 8, 8, 1), seed=cae.eval_seed).numpy().reshape(4, -1).astype(np.float64)
    x01 = tf.constant(x / 255.0, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x01)
        z = cae.encoder(x01, training=False)
    jac = tape.batch_jacobian(z, x01).numpy().reshape(4, 3, -1).astype(np.float64)
    np.testing.assert_allclose(cae.objective_terms(x)["contraction"].numpy(),
                               0.7 * np.sum(np.einsum("bij,bj->bi", jac, u) ** 2, 1), rtol=1e-4)

    vae = _warmed(injflow.VariationalAutoencoder(decoder_std=0.5, **TINY), digits)
    terms = vae.objective_terms(x)
    stats = vae.encoder(x / 255.0, training=False).numpy()
    tfd = tfp.distributions
    q = tfd.MultivariateNormalDiag(stats[:, :3], tf.exp(0.5 * stats[:, 3:]))
    kl = tfd.kl_divergence(q, tfd.MultivariateNormalDiag(tf.zeros(3), tf.ones(3))).numpy()
    np.testing.assert_allclose(terms["kl"].numpy(), kl, rtol=1e-4, atol=1e-6)
    eps = keras.random.normal((4, 3), seed=vae.eval_seed).numpy()
    z = stats[:, :3] + np.exp(0.5 * stats[:, 3:]) * eps
    x_hat = vae.decoder(z, training=False).numpy().reshape(4, -1)
    np.testing.assert_allclose(terms["reconstruction"].numpy(),
                               np.sum((x.reshape(4, -1) / 255.0 - x_hat) ** 2, 1) / (2 * 0.25), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(vae.encode(x)), stats[:, :3], rtol=1e-6)


def test_ae_l2_adds_the_decoder_weight_decay_to_the_loss(digits):
    model = _warmed(injflow.Autoencoder(decoder_weight_decay=0.2, **TINY), digits)
    kernels = [w for w in model.decoder.trainable_weights if "kernel" in w.path]
    decay = 0.2 * sum(float(np.sum(w.numpy() ** 2)) for w in kernels)
    x = digits[:4]
    # The loss is the objective in bits/dim: (mean objective + weight decay, both nats per example) / (D ln 2).
    objective = float(np.mean(model.objective(model(x)).numpy()))
    np.testing.assert_allclose(float(model.compute_loss(x, training=False)),
                               (objective + decay) / (64 * np.log(2.0)), rtol=1e-5)


def test_log_prob_is_the_bound_5_below_the_exact_injective_density(digits):
    model = _warmed(injflow.InjectiveFlow(**TINY), digits)
    model.fit_priors(digits[:200])
    x = digits[:6]
    bound, exact = np.asarray(model.log_prob(x)), np.asarray(model.log_prob(x, exact=True))
    assert np.all(bound <= exact + 1e-4) and np.all(np.isfinite(bound))
    z = np.asarray(model.encode(x))
    jac = _dense_decoder_jacobian(model, z)
    reference = (np.asarray(model.gmm_prior.log_prob(z), np.float64)
                 - 0.5 * np.linalg.slogdet(np.einsum("bij,bik->bjk", jac, jac))[1])
    np.testing.assert_allclose(exact, reference, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(np.asarray(model.bits_per_dim(x)), -bound / (64 * np.log(2)), rtol=1e-6)


def test_gaussian_mixture_prior_against_sklearn_and_its_sampling_distribution():
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(0)
    data = np.concatenate([rng.normal([0, 0], 0.3, (300, 2)), rng.normal([3, 1], [1.0, 0.2], (600, 2)),
                           rng.normal([-2, 3], 0.5, (100, 2))])
    prior = injflow.GaussianMixturePrior(2, num_components=3)
    prior.build()
    assert not prior.is_fitted
    prior.fit(data, seed=0)
    reference = GaussianMixture(3, covariance_type="full", random_state=0, reg_covar=1e-6).fit(data)
    points = rng.normal(0, 2, (50, 2))
    np.testing.assert_allclose(np.asarray(prior.log_prob(points)), reference.score_samples(points), rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_allclose(np.asarray(prior.log_prob_ops(points)), np.asarray(prior.log_prob(points)),
                               rtol=1e-5, atol=1e-5)  # the backend-agnostic path (JAX) agrees with TFP
    samples = np.asarray(prior.sample(40000, seed=1))
    distribution = prior.distribution()
    np.testing.assert_allclose(samples.mean(0), np.asarray(distribution.mean()), atol=0.03)
    np.testing.assert_allclose(np.cov(samples, rowvar=False), np.asarray(distribution.covariance()), atol=0.06)
    assert prior.noise_shapes == ((3,), None)
    frozen = np.asarray(prior.sample(200, temperature=0.0, seed=1))  # temperature 0: the component means
    distance = np.min(np.abs(frozen[:, None] - prior.means.numpy()[None]).sum(-1), axis=1)
    np.testing.assert_allclose(distance, 0, atol=1e-6)


def test_bad_input_is_refused_with_clear_errors(digits):
    model = injflow.InjectiveFlow(**TINY, name="bad")
    with pytest.raises(ValueError, match="has dtype float64, but this model takes uint8 pixels"):
        model.encode(digits[:2] / 255.0)
    with pytest.raises(ValueError, match="deterministic; stochastic=True is not available"):
        model.encode(digits[:2], stochastic=True)
    with pytest.raises(ValueError, match="no observation noise"):
        model.decode(np.zeros((2, 3), "float32"), noise_scale=0.5)
    with pytest.raises(ValueError, match="no observation noise"):
        model.sample(2, noise_scale=0.0)
    with pytest.raises(ValueError, match="bad"):
        model.encode(digits[:2, :4])
    with pytest.raises(ValueError, match="`latent` contains 1 NaN"):
        model.decode(np.array([[0.0, np.nan, 1.0]], "float32"))
    with pytest.raises(ValueError, match="latent"):
        model.decode(np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        model.sample(2, temperature=-1.0)
    with pytest.raises(ValueError, match="`prior` must be None, 'gmm' or 'gaussian'"):
        model.sample(2, prior="flow")
    with pytest.raises(ValueError, match="`output` must be 'uint8' or 'float'"):
        model.sample(2, output="png")
    with pytest.raises(ValueError, match="needs at least 10 encoded examples"):
        model.fit_priors(digits[:5])
    with pytest.raises(ValueError, match="`sampling_prior` must be 'gmm' or 'gaussian'"):
        injflow.InjectiveFlow(**TINY, sampling_prior="vamp")
    with pytest.raises(ValueError, match="`method` must be one of"):
        injflow.InjectiveFlow(**TINY, jvp_method="reverse")
    with pytest.raises(ValueError, match="must divide the image size"):
        injflow.Autoencoder(**{**TINY, "decoder_strides": (2, 2, 2, 2, 1)})
    with pytest.raises(ValueError, match="weights must be positive and sum to 1"):
        model.gmm_prior.set_parameters(np.full(10, 0.2), np.zeros((10, 3)), np.broadcast_to(np.eye(3), (10, 3, 3)))
    with pytest.raises(ValueError, match="symmetric positive definite"):
        model.gaussian_prior.set_parameters([1.0], np.zeros((1, 3)), -np.eye(3)[None])


SERVE = textwrap.dedent("""
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("layers", "zoo", "export", "sklearn", "tensorflow_probability"):
                raise ImportError("blocked while serving: " + name)

    sys.meta_path.insert(0, Block())
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(sys.argv[1])
    s = loaded.signatures["sample"](num_samples=tf.constant(6), temperature=tf.constant(1.0),
                                    seed=tf.constant(5, tf.int64))  # no observation noise: no noise_scale input
    x = np.load(sys.argv[2])
    lp = loaded.signatures["log_prob"](x=tf.constant(x))["log_prob"]
    np.savez(sys.argv[3], images=s["images"].numpy(), log_prob=lp.numpy())
""")


def test_exported_saved_model_and_litert_sampler_sample_from_the_gmm_without_scikit_learn(digits, tmp_path):
    import export

    model = zoo.get("injflow_digits_8", hidden_channels=2)
    _warmed(model, digits)
    model.fit_priors(digits[:300])
    path = export.saved_model(model, str(tmp_path / "sm"))
    (tmp_path / "serve.py").write_text(SERVE)
    np.save(tmp_path / "x.npy", digits[:5])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, str(tmp_path / "serve.py"), path, str(tmp_path / "x.npy"),
                             str(tmp_path / "out.npz")], capture_output=True, text=True, cwd=str(tmp_path), env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    served = np.load(tmp_path / "out.npz")
    expected = np.asarray(model.sample(6, seed=5))
    assert np.mean(served["images"] != expected) <= 0.01
    np.testing.assert_allclose(served["log_prob"], np.asarray(model.log_prob(digits[:5])), rtol=1e-4, atol=1e-3)
    # The LiteRT sampler too (component choice by comparisons only: LiteRT has no erf).
    from ai_edge_litert.interpreter import Interpreter

    lite = export.tflite_sampler(model, str(tmp_path / "sampler.tflite"), batch_size=4)
    noise = np.random.default_rng(0).standard_normal((4,) + model.noise_shapes[0]).astype("float32")
    generate = Interpreter(model_path=lite["path"]).get_signature_runner("generate")
    images = generate(latent_noise=noise, temperature=np.float32(0.8))["images"]
    assert np.mean(images != np.asarray(model.generate(noise, None, 0.8))) <= 0.01


JAX_SCRIPT = textwrap.dedent("""
    import keras, numpy as np
    from layers import jacobian as J
    from zoo import injflow
    assert J.resolve_method("auto") == "forward"
    layer = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                              keras.layers.ELU(), keras.layers.Dense(5)])
    z = keras.random.normal((16, 3), seed=1); v = keras.random.normal((16, 3), seed=2)
    out, jv = J.layer_jvp(layer, z, v, training=False)
    _, fd = J.jvp(lambda q: layer(q, training=False), z, v, method="finite_difference", epsilon=1e-3)
    assert np.max(np.abs(np.asarray(jv) - np.asarray(fd))) < 1e-2
    x = (np.random.default_rng(0).integers(0, 256, (32, 8, 8, 1))).astype("uint8")
    model = injflow.InjectiveFlow(image_shape=(8, 8, 1), latent_dim=3, hidden_channels=2,
                                  encoder_strides=(1, 2, 1, 2, 1), decoder_strides=(2, 2, 1, 1, 1), kernel_size=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    mean_before = np.asarray(model.decoder.layers[1].moving_mean).copy()
    history = model.fit(x, batch_size=16, epochs=1, verbose=0)
    assert int(np.asarray(model.penalty_step)) == 2 and np.isfinite(history.history["loss"][0])
    assert not np.allclose(np.asarray(model.decoder.layers[1].moving_mean), mean_before)
    # The post-hoc prior without TFP (its JAX substrate does not import here): keras.ops density and sampling.
    model.gmm_prior.set_parameters(np.full(10, 0.1), np.zeros((10, 3)), np.broadcast_to(np.eye(3), (10, 3, 3)))
    assert np.all(np.isfinite(np.asarray(model.log_prob(x[:2]))))
    assert np.asarray(model.sample(3, seed=0)).shape == (3, 8, 8, 1)
    print("jax injflow passed")
""")


def test_jvp_and_a_training_step_under_jax():
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "jax injflow passed" in result.stdout
