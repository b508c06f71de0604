"""The one prior protocol (layers.Prior) over every prior, and the Gaussian mixture prior against SciPy."""

import json
import zipfile

import keras
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import layers
from layers.testing import perturb_weights


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _gmm_parameters(rng, k=3, d=2):
    weights = rng.dirichlet(np.ones(k) * 3.0)
    means = rng.standard_normal((k, d)) * 2.0
    factors = np.tril(rng.standard_normal((k, d, d))) * 0.3 + np.eye(d) * 0.8
    return weights, means, factors @ np.swapaxes(factors, 1, 2)


def _standard_normal():
    return layers.StandardNormal(), (3,)


def _gaussian_nif():
    return layers.GaussianNIF(2, seed=0), (5,)


def _upsample_nif():
    return layers.UpsampleNIF(2, seed=0), (4, 4, 2)


def _deep_nif():
    latent_flow = layers.FlowSequence([layers.ActNorm(data_init=False), layers.AffineCoupling(8), layers.Permute()])
    return layers.DeepNIFPrior(layers.GaussianNIF(2, seed=0), latent_flow, num_importance_samples=2, seed=0), (5,)


def _split_prior():
    inner = layers.FlowSequence([layers.ActNorm(data_init=False), layers.AffineCoupling(8)])
    return layers.SplitPrior(2, inner, v_std=0.3), (4,)


def _spread_prior():
    return layers.SpreadPrior(0.1, seed=0), (3,)


def _mixture():
    prior = layers.GaussianMixturePrior(2, num_components=3)
    prior.build()
    prior.set_parameters(*_gmm_parameters(np.random.default_rng(0)))
    return prior, (2,)


def _class_conditional_normal():
    return layers.ClassConditionalNormal(3), (2, 2, 3)


def _class_conditional_nif():
    return layers.GaussianNIF(2, seed=0, num_classes=3), (5,)


def _class_conditional_mixture():
    prior = layers.GaussianMixturePrior(2, num_components=3, num_classes=2)
    prior.build()
    rng = np.random.default_rng(0)
    prior.set_parameters(*(np.stack(part) for part in zip(*(_gmm_parameters(rng) for _ in range(2)))))
    return prior, (2,)


def _class_conditional_deep_nif():
    latent_flow = layers.FlowSequence([layers.ActNorm(data_init=False), layers.AffineCoupling(8), layers.Permute()])
    return layers.DeepNIFPrior(layers.GaussianNIF(2, seed=0), latent_flow, num_importance_samples=2, seed=0,
                               num_classes=3), (5,)


def _class_conditional_split_prior():
    inner = layers.FlowSequence([layers.ActNorm(data_init=False), layers.AffineCoupling(8)])
    return layers.SplitPrior(2, inner, v_std=0.3, num_classes=3), (4,)


def _labels(prior, n):
    """``{"labels": ...}`` (every class in turn) for a class-conditional prior, ``{}`` otherwise."""
    return {} if prior.num_classes is None else {"labels": np.arange(n) % prior.num_classes}


CASES = {
    "standard_normal": _standard_normal,
    "gaussian_nif": _gaussian_nif,
    "upsample_nif": _upsample_nif,
    "deep_nif": _deep_nif,
    "split_prior": _split_prior,
    "spread_prior": _spread_prior,
    "gaussian_mixture": _mixture,
    "class_conditional_normal": _class_conditional_normal,
    "class_conditional_nif": _class_conditional_nif,
    "class_conditional_mixture": _class_conditional_mixture,
    "class_conditional_deep_nif": _class_conditional_deep_nif,
    "class_conditional_split_prior": _class_conditional_split_prior,
}


def _built(case):
    prior, flow_latent_shape = CASES[case]()
    if not prior.built:
        prior.build((None,) + flow_latent_shape)
    perturb_weights(prior, np.random.default_rng(1), scale=0.2)
    return prior, flow_latent_shape


def test_every_public_prior_has_a_case():
    covered = {type(factory()[0]) for factory in CASES.values()}
    public = {obj for obj in vars(layers).values() if isinstance(obj, type) and issubclass(obj, layers.Prior)}
    abstract = {layers.Prior, layers.NIFPrior}
    assert public - abstract <= covered, f"priors without a case: {sorted(c.__name__ for c in public - abstract - covered)}"
    assert layers.LatentPrior is layers.Prior  # the former name


@pytest.mark.parametrize("case", sorted(CASES))
def test_sample_is_generate_on_drawn_noise(case):
    prior, flow_latent_shape = _built(case)
    for temperature, noise_scale, seed in ((1.0, 1.0, 3), (0.7, 0.0, 4), (0.0, 2.0, 5)):
        noise = layers.draw_noise(prior.noise_shapes, 6, seed, prior.compute_dtype)
        expected = _np(prior.generate(*noise, temperature, noise_scale, **_labels(prior, 6)))
        np.testing.assert_array_equal(_np(prior.sample(6, temperature, noise_scale, seed=seed, **_labels(prior, 6))),
                                      expected)
    z = prior.sample(6, seed=7, **_labels(prior, 6))
    assert tuple(z.shape) == (6,) + flow_latent_shape
    log_p = _np(prior.log_prob(z, **_labels(prior, 6)))
    assert log_p.shape == (6,) and np.all(np.isfinite(log_p))
    assert prior.has_observation_noise == (prior.noise_shapes[1] is not None)
    if not isinstance(prior, layers.NIFPrior) and prior.num_classes is None:  # NIF priors: (z, manifold term)
        np.testing.assert_allclose(_np(prior(z)), _np(prior.log_prob(z)), rtol=1e-6)
    if prior.num_classes is not None:  # labels are required, and change the density
        with pytest.raises(ValueError, match="needs `labels`"):
            prior.log_prob(z)
        assert not np.allclose(_np(prior.log_prob(z, labels=np.zeros(6, "int32"))), log_p)
    else:
        with pytest.raises(ValueError, match="not class-conditional"):
            prior.sample(6, seed=7, labels=np.zeros(6, "int32"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_encode_decode_honour_or_refuse_their_arguments(case):
    prior, flow_latent_shape = _built(case)
    z = prior.sample(5, seed=2, **_labels(prior, 5))
    latent = prior.encode(z)
    assert tuple(latent.shape) == (5,) + tuple(prior.latent_shape)
    assert tuple(prior.decode(latent).shape) == (5,) + flow_latent_shape
    name = type(prior).__name__
    if prior.stochastic_encoder:
        first, again = _np(prior.encode(z, stochastic=True, seed=9)), _np(prior.encode(z, stochastic=True, seed=9))
        np.testing.assert_array_equal(first, again)
        assert not np.allclose(first, _np(latent))
    else:
        with pytest.raises(ValueError, match=f"{name} has a deterministic encoder; stochastic=True is not available"):
            prior.encode(z, stochastic=True)
        with pytest.raises(ValueError, match=f"{name} has a deterministic encoder"):
            prior.encode(z, seed=1)
    if prior.has_observation_noise:
        noisy = _np(prior.decode(latent, noise_scale=1.0, seed=4))
        np.testing.assert_array_equal(noisy, _np(prior.decode(latent, noise_scale=1.0, seed=4)))
        assert not np.allclose(noisy, _np(prior.decode(latent)))
        # Given noise enters as sqrt(noise_scale) times a fixed offset.
        given = np.random.default_rng(3).standard_normal((5,) + tuple(prior.noise_shapes[1])).astype("float32")
        clean = _np(prior.decode(latent))
        half = _np(prior.decode(latent, noise_scale=0.5, noise=given)) - clean
        full = _np(prior.decode(latent, noise_scale=1.0, noise=given)) - clean
        np.testing.assert_allclose(half, np.sqrt(0.5) * full, rtol=1e-4, atol=1e-5)
        assert np.abs(full).max() > 1e-3
    else:
        with pytest.raises(ValueError, match=f"{name} has no observation noise; decode\\(noise_scale=0.5\\)"):
            prior.decode(latent, noise_scale=0.5)
        with pytest.raises(ValueError, match=f"{name} has no observation noise"):
            prior.decode(latent, seed=3)
        prior.decode(latent, noise_scale=0)  # the default, as an int, is fine


def test_protocol_flags():
    assert not layers.StandardNormal.stochastic_encoder and not layers.SplitPrior.stochastic_encoder
    assert not layers.GaussianMixturePrior.stochastic_encoder
    for cls in (layers.GaussianNIF, layers.UpsampleNIF, layers.DeepNIFPrior, layers.SpreadPrior):
        assert cls.stochastic_encoder, cls.__name__


def test_split_prior_initialize_runs_the_inner_act_norm():
    inner = layers.FlowSequence([layers.ActNorm()])
    prior = layers.SplitPrior(1, inner, v_std=0.3)
    prior.build((None, 3))
    z = np.random.default_rng(0).standard_normal((64, 3)).astype("float32") * 3.0 + 1.0
    prior.initialize(z)
    u_prime = _np(prior.encode(z))
    np.testing.assert_allclose(u_prime.mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(u_prime.std(), 1.0, atol=1e-3)


# ------------------------------------------------------------------ Gaussian mixture


def test_gaussian_mixture_log_prob_against_scipy():
    rng = np.random.default_rng(10)
    weights, means, covariances = _gmm_parameters(rng, k=4, d=3)
    prior = layers.GaussianMixturePrior(3, num_components=4)
    prior.build()
    assert not prior.is_fitted
    prior.set_parameters(weights, means, covariances)
    assert prior.is_fitted
    z = rng.standard_normal((7, 3)) * 2.0
    reference = logsumexp(
        [np.log(w) + stats.multivariate_normal(m, c).logpdf(z) for w, m, c in zip(weights, means, covariances)], axis=0
    )
    np.testing.assert_allclose(_np(prior.log_prob(z.astype("float32"))), reference, rtol=1e-5)  # TFP on TensorFlow
    np.testing.assert_allclose(_np(prior.log_prob_ops(z.astype("float32"))), reference, rtol=1e-5)  # keras.ops


def test_gaussian_mixture_generate_picks_components_by_threshold():
    prior = layers.GaussianMixturePrior(2, num_components=3)
    prior.build()
    weights, means, covariances = np.array([0.2, 0.5, 0.3]), np.arange(6.0).reshape(3, 2), np.stack([np.eye(2)] * 3)
    prior.set_parameters(weights, means, covariances)
    assert prior.noise_shapes == ((3,), None)
    u = stats.norm.ppf([0.1, 0.3, 0.69, 0.75, 0.95])  # cumulative weights 0.2, 0.7, 1.0
    noise = np.concatenate([u[:, None], np.zeros((5, 2))], axis=1).astype("float32")
    np.testing.assert_allclose(_np(prior.generate(noise, temperature=0.0)), means[[0, 1, 1, 2, 2]], atol=1e-6)
    # Temperature multiplies each component's standard deviation: mean_k + t L_k eps (here L_k = 2 I).
    prior.set_parameters(weights, means, 4.0 * covariances)
    eps = np.random.default_rng(0).standard_normal((5, 2))
    noise = np.concatenate([u[:, None], eps], axis=1).astype("float32")
    np.testing.assert_allclose(_np(prior.generate(noise, temperature=0.5)), means[[0, 1, 1, 2, 2]] + 0.5 * 2.0 * eps,
                               rtol=1e-5, atol=1e-5)


def test_gaussian_mixture_keeps_its_registered_name_and_loads_old_files(tmp_path):
    assert keras.saving.get_registered_name(layers.GaussianMixturePrior) == "flow_zoo>GaussianMixturePrior"
    prior = layers.GaussianMixturePrior(2, num_components=3, name="gmm_prior")
    prior.build()
    prior.set_parameters(*_gmm_parameters(np.random.default_rng(2)))
    inputs = keras.Input((2,))
    model = keras.Model(inputs, prior(inputs))
    path = tmp_path / "gmm.keras"
    model.save(path)
    # A file written when the class lived in zoo/injflow.py: same registered name, the old module.
    old = tmp_path / "gmm_old.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                text = json.dumps(config).replace('"module": "layers.priors"', '"module": "zoo.injflow"')
                assert "zoo.injflow" in text
                data = text.encode()
            target.writestr(item, data)
    z = np.random.default_rng(3).standard_normal((4, 2)).astype("float32")
    for file in (path, old):
        loaded = keras.saving.load_model(file)
        restored = loaded.get_layer("gmm_prior")
        assert type(restored) is layers.GaussianMixturePrior and restored.is_fitted
        np.testing.assert_allclose(_np(loaded(z)), _np(model(z)), rtol=1e-6)


@pytest.mark.parametrize("case", sorted(c for c in CASES if c != "gaussian_mixture"))  # the GMM's own test: mean_k + t L_k eps
def test_temperature_scales_the_standard_deviation_of_the_prior_latent(case):
    """The one convention (docs/ARCHITECTURE.md, "Temperature and noise scale"): the prior latent is
    ``t`` times its draw at ``t = 1`` (GLOW's and the NIF reference code's; the NIF paper's text says variance)."""
    prior, _ = _built(case)
    latent_noise, observation_noise = layers.draw_noise(prior.noise_shapes, 4, 11, prior.compute_dtype)
    zero = None if observation_noise is None else np.zeros_like(_np(observation_noise))
    s = 0.0 if prior.has_observation_noise else 1.0

    def latent(t):
        return _np(prior.encode(prior.generate(latent_noise, zero, temperature=t, noise_scale=s, **_labels(prior, 4))))

    assert np.abs(latent(1.0)).max() > 1e-2
    centre = latent(0.0)  # 0, or the class means of a class-conditional prior
    if prior.num_classes is None:
        np.testing.assert_allclose(centre, 0.0, atol=1e-5)
    for t in (0.5, 2.0):
        np.testing.assert_allclose(latent(t) - centre, t * (latent(1.0) - centre), rtol=1e-4, atol=1e-4)
