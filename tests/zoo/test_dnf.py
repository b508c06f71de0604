"""DNF, M-flow and PIE (zoo/models/dnf): loss terms, densities, Gram determinants, phases, saving, bad input."""

import math

import keras
import numpy as np
import pytest

import layers as flow_layers
import zoo
from zoo import dnf
from zoo.data import manifolds
from zoo.presets import registry
from zoo.data.datasets import load_digits_images

LOC, LOG_SCALE = np.array([0.2, -0.1, 0.3]), np.array([0.5, -0.4, 0.1])
INNER_LOC, INNER_LOG_SCALE = 0.4, -0.7


def _tiny(mode, **kwargs):
    """D = 3, d = 1: outer flow = act-norm then reverse, inner flow = act-norm, all weights set by hand."""
    flow = flow_layers.FlowSequence([flow_layers.ActNorm(data_init=False), flow_layers.Permute()])
    inner = flow_layers.FlowSequence([flow_layers.ActNorm(data_init=False)])
    model = dnf.DenoisingFlow(flow, (3,), 1, inner, mode=mode, **kwargs)
    flow.flow_layers[0].loc.assign(LOC)
    flow.flow_layers[0].log_scale.assign(LOG_SCALE)
    inner.flow_layers[0].loc.assign([INNER_LOC])
    inner.flow_layers[0].log_scale.assign([INNER_LOG_SCALE])
    return model


def _hand_terms(x, noise, sigma, v_std, lam):
    h = x + sigma * noise
    y = (h + LOC) * np.exp(LOG_SCALE)
    z = y[:, ::-1]
    u, v = z[:, :1], z[:, 1:]
    u_prime = (u[:, 0] + INNER_LOC) * math.exp(INNER_LOG_SCALE)
    log_q = (-0.5 * u_prime**2 - 0.5 * math.log(2 * math.pi) + INNER_LOG_SCALE
             - 0.5 * np.sum(v**2, 1) / v_std**2 - math.log(2 * math.pi * v_std**2) + LOG_SCALE.sum())
    padded = np.concatenate([u, np.zeros_like(v)], 1)
    x_hat = padded[:, ::-1] * np.exp(-LOG_SCALE) - LOC
    reconstruction = np.sum((x - x_hat) ** 2, 1)
    return -log_q, reconstruction, -log_q + lam * reconstruction


def test_dnf_loss_terms_against_hand_computation():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3)).astype("float32")
    noise = rng.standard_normal((5, 3)).astype("float32")
    model = _tiny("dnf", noise_std=0.3, reconstruction_weight=2.0)
    terms = {k: np.asarray(v) for k, v in model.loss_terms(x, noise=noise).items()}
    nll, reconstruction, loss = _hand_terms(x.astype("float64"), noise, 0.3, 0.3, 2.0)
    np.testing.assert_allclose(terms["nll"], nll, rtol=1e-5)
    np.testing.assert_allclose(terms["reconstruction"], reconstruction, rtol=1e-5)
    np.testing.assert_allclose(terms["loss"], loss, rtol=1e-5)
    # The loss is the objective in bits/dim (nats per example / (D ln 2), D = 3); the terms sum to loss_terms' loss.
    np.testing.assert_allclose(float(model.compute_loss(x, training=False)),
                               np.mean(np.asarray(model.loss_terms(x)["loss"])) / (3 * np.log(2.0)), rtol=1e-6)
    np.testing.assert_allclose(sum(np.asarray(v) for v in model(x).values()), np.asarray(model.loss_terms(x)["loss"]),
                               rtol=1e-6)
    # The model density at clean x is eq. 13 without noise; PIE is the same with sigma = lambda = 0.
    np.testing.assert_allclose(np.asarray(model.log_prob(x)), -_hand_terms(x, noise, 0.0, 0.3, 0.0)[0], rtol=1e-5)
    pie = _tiny("pie", noise_std=0.0, reconstruction_weight=0.0)
    np.testing.assert_allclose(np.asarray(pie.loss_terms(x)["loss"]), _hand_terms(x, noise, 0.0, 0.01, 0.0)[2],
                               rtol=1e-5)


def test_on_manifold_density_and_gram_estimate():
    model = _tiny("dnf", noise_std=0.3)
    latent = np.array([[0.5], [-1.0]], "float32")
    on = model.decode(latent)  # v = 0 exactly
    off = np.asarray(on) + np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]], "float32")
    log_p = np.asarray(model.on_manifold_log_prob(np.concatenate([on, off[1:]], 0)))
    expected = np.asarray(model.log_prob(on)) + math.log(2 * math.pi * 0.09)  # (D - d) / 2 * log(2 pi sigma^2)
    np.testing.assert_allclose(log_p[:2], expected, rtol=1e-5)
    assert log_p[2] == -np.inf  # |v| = exp(-0.4) > sigma / 3
    np.testing.assert_allclose(np.asarray(model.log_gram_det_estimate(on)),
                               -2 * (LOG_SCALE.sum() + INNER_LOG_SCALE) * np.ones(2), rtol=1e-5)


def _isometric_dnf_with_preprocessing(preprocessing):
    """D = 3, d = 1, float64: outer flow = a permutation (an isometry, so Proposition 1 and section 5.1 hold
    exactly in its input space), inner flow = act-norm, ``v_std = sigma``; ``preprocessing`` is random."""
    flow = flow_layers.FlowSequence([flow_layers.Permute()])
    inner = flow_layers.FlowSequence([flow_layers.ActNorm(data_init=False)])
    model = dnf.DenoisingFlow(flow, (3,), 1, inner, mode="dnf", noise_std=0.3, preprocessing=preprocessing)
    inner.flow_layers[0].loc.assign([INNER_LOC])
    inner.flow_layers[0].log_scale.assign([INNER_LOG_SCALE])
    rng = np.random.default_rng(3)
    for w in preprocessing.trainable_weights:
        w.assign(np.asarray(w) + 0.4 * rng.standard_normal(w.shape))
    return model


@pytest.mark.parametrize("kind", ["scale_x10", "actnorm_then_coupling"])
def test_on_manifold_density_with_preprocessing_against_the_exact_gram_path(kind):
    """Section 5.1 and Proposition 1 in the data space: only the tangential part of the preprocessing's
    Jacobian enters, checked against the exact density pi(u') / sqrt(det G_g(u')) of the generator through
    the preprocessing (float64 autodiff Gram determinant)."""
    keras.config.set_dtype_policy("float64")
    keras.utils.set_random_seed(5)
    try:
        act = flow_layers.ActNorm(data_init=False)
        steps = [act] if kind == "scale_x10" else [act, flow_layers.AffineCoupling(hidden_units=8)]
        model = _isometric_dnf_with_preprocessing(flow_layers.FlowSequence(steps))
        if kind == "scale_x10":  # P(x) = 10 x: the full log-det is D log 10, the tangential one d log 10
            act.loc.assign(np.zeros(3))
            act.log_scale.assign(np.full(3, math.log(10.0)))
        latent = np.array([[0.7], [-1.2], [0.1]])
        x = np.asarray(model.generator(latent))  # points on the learned manifold (v = 0)
        np.testing.assert_allclose(np.asarray(model.encode(x)), latent, atol=1e-10)
        exact = -0.5 * latent[:, 0]**2 - 0.5 * math.log(2 * math.pi) - np.asarray(model.generator_gram_log_det(latent))
        np.testing.assert_allclose(np.asarray(model.on_manifold_log_prob(x)), exact, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(np.asarray(model.log_gram_det_estimate(x)),
                                   2 * np.asarray(model.generator_gram_log_det(latent)), rtol=1e-9, atol=1e-9)
        # The old formula (the whole D-dim preprocessing log-det) is wrong by the normal part.
        z, full_log_det = model.forward(x)
        old = (np.asarray(model.prior.log_prob(z) + full_log_det) + math.log(2 * math.pi * 0.09))
        tangential = np.asarray(model.preprocessing_tangent_log_det(x))
        if kind == "scale_x10":
            np.testing.assert_allclose(tangential, math.log(10.0) * np.ones(3), rtol=1e-12)
            np.testing.assert_allclose(old - exact, (3 - 1) * math.log(10.0) * np.ones(3), rtol=1e-9)  # (D - d) log 10
        assert np.all(np.abs(old - exact) > 0.1), old - exact
        # In the flow's input space (no Jacobian) the density differs from the data-space one by exactly the tangent term.
        np.testing.assert_allclose(np.asarray(model.on_manifold_log_prob(x, space="flow_input")) + tangential, exact,
                                   rtol=1e-9, atol=1e-9)
        with pytest.raises(ValueError, match="`space` must be one of"):
            model.on_manifold_log_prob(x, space="latent")
    finally:
        keras.config.set_dtype_policy("float32")


def test_preprocessing_tangent_log_det_is_zero_without_preprocessing():
    model = _tiny("dnf", noise_std=0.3)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(model.preprocessing_tangent_log_det(x)), np.zeros(4))


def test_mflow_gram_determinant_against_brute_force_jacobian():
    keras.config.set_dtype_policy("float64")
    try:
        model = dnf.make_vector_dnf(3, 2, mode="mflow", num_couplings=2, hidden_units=8, inner_couplings=2)
        rng = np.random.default_rng(1)
        for w in model.trainable_weights:
            w.assign(np.asarray(w) + 0.3 * rng.standard_normal(w.shape))
        latent = rng.standard_normal((4, 2))
        step = 1e-6
        jac = np.stack([(np.asarray(model.generator(latent + step * e)) - np.asarray(model.generator(latent - step * e)))
                        / (2 * step) for e in np.eye(2)], axis=-1)
        reference = 0.5 * np.linalg.slogdet(np.einsum("bji,bjk->bik", jac, jac))[1]
        np.testing.assert_allclose(np.asarray(model.generator_gram_log_det(latent)), reference, rtol=1e-6, atol=1e-7)
        x = np.asarray(model.generator(latent))  # points on the learned manifold
        np.testing.assert_allclose(np.asarray(model.encode(x)), latent, atol=1e-8)
        log_n = -0.5 * np.sum(latent**2, 1) - math.log(2 * math.pi)
        np.testing.assert_allclose(np.asarray(model.log_prob(x)), log_n - reference, rtol=1e-6, atol=1e-7)
    finally:
        keras.config.set_dtype_policy("float32")


def test_short_fit_of_dnf_spiral_lowers_the_loss():
    data = manifolds.thin_spiral(1000, seed=0).data
    model = registry.get("dnf_spiral_1", num_couplings=2, hidden_units=16)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.initialize(data)
    before = float(model.compute_loss(data, training=False))
    history = model.fit(data, batch_size=100, epochs=3, verbose=0)
    after = float(model.compute_loss(data, training=False))
    assert np.all(np.isfinite(history.history["loss"]))
    assert after < before - 1.0 / (2 * math.log(2.0)), (before, after)  # 1 nat per example, in bits/dim (D = 2)
    assert float(model.compute_loss(data, training=False)) == after  # fixed-seed noise at evaluation


def test_mflow_phases_train_only_their_flow():
    data = manifolds.thin_spiral(400, seed=1).data
    model = registry.get("mflow_spiral_1", num_couplings=2, hidden_units=16)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.initialize(data[:200])
    outer = [np.asarray(w) for w in model.flow.weights]
    inner = [np.asarray(w) for w in model.prior.inner_flow.weights]
    recon_before = float(np.mean(np.asarray(model.loss_terms(data)["reconstruction"])))
    histories = dnf.train_mflow(model, data, schedule="sequential", manifold_epochs=2, density_epochs=2,
                                batch_size=100, verbose=0)
    assert [phase for phase, _ in histories] == ["manifold", "density"]
    recon_after = float(np.mean(np.asarray(model.loss_terms(data)["reconstruction"])))
    assert recon_after < recon_before
    # The density phase (last) moved only the inner flow; re-run the manifold phase: only the outer flow moves.
    outer_now = [np.asarray(w) for w in model.flow.weights]
    inner_now = [np.asarray(w) for w in model.prior.inner_flow.weights]
    assert any(not np.array_equal(a, b) for a, b in zip(outer, outer_now))
    assert any(not np.array_equal(a, b) for a, b in zip(inner, inner_now))
    model.phase = "manifold"
    model.fit(data, batch_size=100, epochs=1, verbose=0)
    for a, b in zip(inner_now, model.prior.inner_flow.weights):
        np.testing.assert_array_equal(a, np.asarray(b))
    outer_now = [np.asarray(w) for w in model.flow.weights]
    dnf.train_mflow(model, data, schedule="alternating", cycles=1, manifold_epochs=0, density_epochs=1,
                    batch_size=100, verbose=0)
    for a, b in zip(outer_now, model.flow.weights):
        np.testing.assert_array_equal(a, np.asarray(b))


def test_keras_file_round_trip_and_sampling(tmp_path):
    data = manifolds.thin_spiral(200, seed=2).data
    for name in ("dnf_spiral_1", "mflow_spiral_1"):
        model = registry.get(name, num_couplings=2, hidden_units=8)
        model.initialize(data)
        if name.startswith("mflow"):
            model.phase = "density"
        path = str(tmp_path / f"{name}.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        assert isinstance(loaded, dnf.DenoisingFlow) and loaded.mode == model.mode and loaded.phase == model.phase
        x = data[:6]
        for method in ("log_prob", "on_manifold_log_prob", "encode", "log_gram_det_estimate"):
            np.testing.assert_allclose(np.asarray(getattr(loaded, method)(x)), np.asarray(getattr(model, method)(x)),
                                       rtol=1e-5, atol=1e-6, err_msg=f"{name}.{method}")
        np.testing.assert_array_equal(np.asarray(loaded.sample(4, seed=3)), np.asarray(model.sample(4, seed=3)))
    # Samples lie on the learned manifold: encode(decode(u')) = u', and temperature 0 gives decode(0).
    latent = np.array([[0.7], [-0.4]], "float32")
    np.testing.assert_allclose(np.asarray(model.encode(model.decode(latent))), latent, rtol=1e-4, atol=1e-4)
    cold = np.asarray(model.sample(3, temperature=0.0, seed=1))
    np.testing.assert_allclose(cold, np.repeat(np.asarray(model.decode(np.zeros((1, 1), "float32"))), 3, 0), rtol=1e-6)


def test_image_dnf_trains_a_step_and_samples():
    images = load_digits_images()[0][:64]
    model = registry.get("dnf_digits_8", steps_per_level=1, hidden_channels=8, latent_flow_hidden_units=8,
                         latent_flow_couplings=2)
    assert model.example_shape == (8, 8, 1) and tuple(model.prior.latent_shape) == (8,)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(images, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert tuple(model.encode(images[:2]).shape) == (2, 8)
    samples = model.sample(2, temperature=0.7, seed=0)
    assert samples.dtype == "uint8" and tuple(samples.shape) == (2, 8, 8, 1)


def test_presets_are_registered():
    names = {p["name"]: p for p in registry.list_presets()}
    for name, family, dataset in (("dnf_spiral_1", "dnf", "spiral"), ("mflow_spiral_1", "mflow", "spiral"),
                                  ("pie_spiral_1", "pie", "spiral"), ("dnf_sin_1", "dnf", "sin"),
                                  ("dnf_celeba_512", "dnf", "celeba"), ("mflow_celeba_512", "mflow", "celeba"),
                                  ("dnf_fmnist_64", "dnf", "fmnist"), ("dnf_digits_8", "dnf", "digits")):
        assert names[name]["family"] == family and names[name]["dataset"] == dataset
        assert name.endswith(f"_{names[name]['latent_dim']}")


def test_bad_input():
    with pytest.raises(ValueError, match="`mode` must be one of"):
        dnf.make_vector_dnf(2, 1, mode="vae")
    with pytest.raises(ValueError, match="sigma = 0 is PIE"):
        dnf.make_vector_dnf(2, 1, mode="dnf", noise_std=0.0)
    with pytest.raises(ValueError, match="trains on clean data"):
        dnf.make_vector_dnf(2, 1, mode="mflow", noise_std=0.1)
    with pytest.raises(ValueError, match="reconstruction_weight` must be 0"):
        dnf.make_vector_dnf(2, 1, mode="pie", reconstruction_weight=1.0)
    with pytest.raises(ValueError, match="1 <= d < D"):
        dnf.make_vector_dnf(3, 3, num_couplings=1, hidden_units=4)
    model = dnf.make_vector_dnf(2, 1, num_couplings=1, hidden_units=4)
    with pytest.raises(ValueError, match="`phase` must be one of"):
        model.phase = "density"
    with pytest.raises(ValueError, match=r"`x` must have shape \(batch, 2\)"):
        model.log_prob(np.zeros((3, 3), "float32"))
    with pytest.raises(ValueError, match="non-finite|NaN"):
        model.log_prob(np.array([[np.nan, 0.0]], "float32"))
    with pytest.raises(ValueError, match="mode='mflow'"):
        dnf.train_mflow(model, np.zeros((4, 2), "float32"))


@pytest.mark.parametrize("winding", ["reference", "paper"])
def test_thin_spiral_speed_and_latent_distances(winding):
    u = np.array([0.01, 0.3, 1.7])
    step = 1e-7
    speed = np.linalg.norm(manifolds.thin_spiral_map(u + step, winding) - manifolds.thin_spiral_map(u - step, winding),
                           axis=-1) / (2 * step)
    np.testing.assert_allclose(np.exp(zoo.experiments.thin_spiral.thin_spiral_log_speed(u, winding)), speed, rtol=1e-6)
    grid = np.linspace(0.0, 3.0, 3001)
    true = np.exp(-grid / 0.3) / 0.3
    same = zoo.experiments.thin_spiral.latent_density_distances(grid, true, true)
    assert same["total_variation"] == 0 and abs(same["wasserstein_1"]) < 1e-12
    shifted = zoo.experiments.thin_spiral.latent_density_distances(grid, np.exp(-(grid - 0.5) / 0.3) / 0.3 * (grid >= 0.5), true)
    np.testing.assert_allclose(shifted["wasserstein_1"], 0.5, atol=1e-3)  # W1 of a shift = the shift
    # KS of Exp(0.3) against it shifted by 0.5: the largest CDF gap is F(0.5) = 1 - exp(-0.5 / 0.3), at u = 0.5.
    np.testing.assert_allclose(shifted["kolmogorov_smirnov"], 1 - np.exp(-0.5 / 0.3), atol=1e-3)
    assert same["kolmogorov_smirnov"] < 1e-12
    zero = zoo.experiments.thin_spiral.latent_density_distances(grid, np.zeros_like(grid), true)
    np.testing.assert_allclose(zero["total_variation"], 0.5, atol=1e-3)
    assert np.isnan(zero["wasserstein_1"]) and np.isnan(zero["kolmogorov_smirnov"]) and zero["learned_mass"] == 0


def test_thin_spiral_winds_as_the_reference_simulator_by_default():
    """The released simulator's angle is 540 degrees * sqrt(u) = 3 pi sqrt(u); the paper's text prints 4 pi / 3."""
    def turns_99(spiral):
        angle = np.unwrap(np.arctan2(spiral.data[:, 1], spiral.data[:, 0])[np.argsort(spiral.latent[:, 0])])
        return np.quantile(angle - angle[0], 0.99) / (2 * np.pi)

    default, paper = manifolds.thin_spiral(20000, seed=0), manifolds.thin_spiral(20000, seed=0, winding="paper")
    np.testing.assert_allclose(turns_99(default), 1.76, atol=0.03)
    np.testing.assert_allclose(turns_99(paper), 0.78, atol=0.02)
    np.testing.assert_array_equal(default.latent, paper.latent)  # the same u, wound differently
    radius = np.linalg.norm(default.data, axis=1)
    np.testing.assert_allclose(radius, 3 * np.pi * np.sqrt(default.latent[:, 0]) / 3, rtol=1e-5)
    with pytest.raises(ValueError, match="`winding` must be one of"):
        manifolds.thin_spiral(10, winding="4pi/3")


def test_image_mflow_gram_determinant_against_brute_force_jacobian():
    keras.config.set_dtype_policy("float64")
    try:
        model = dnf.make_image_dnf((8, 8, 1), 3, mode="mflow", num_levels=1, steps_per_level=1, hidden_channels=4,
                                   n_bits=5, latent_flow_couplings=1, latent_flow_hidden_units=4, num_bins=4)
        images = load_digits_images()[0][:3]
        model.initialize(images)
        rng = np.random.default_rng(0)
        for w in model.trainable_weights:
            w.assign(np.asarray(w) + 0.05 * rng.standard_normal(w.shape))
        latent = np.asarray(model.encode(images))
        step = 1e-6  # the generator is continuous in the levels k + u (no rounding)
        jac = np.stack([(np.asarray(model.generator(latent + step * e)) - np.asarray(model.generator(latent - step * e)))
                        .reshape(3, -1) / (2 * step) for e in np.eye(3)], axis=-1)
        reference = 0.5 * np.linalg.slogdet(np.einsum("bji,bjk->bik", jac, jac))[1]
        np.testing.assert_allclose(np.asarray(model.generator_gram_log_det(latent)), reference, rtol=1e-6, atol=1e-6)
        assert np.all(np.isfinite(np.asarray(model.log_prob(images))))
    finally:
        keras.config.set_dtype_policy("float32")


def _spiral_mflow():
    return dnf.make_vector_dnf(2, 1, mode="mflow", num_couplings=2, hidden_units=8, seed=0, name="mflow")


@pytest.mark.parametrize("phase", ["manifold", "density"])
def test_thin_spiral_reference_loss_scale_carries_the_released_loss_to_ours(phase):
    # The released code's M-flow losses: 1000 x MSE (mean over batch and coordinates) in the manifold phase,
    # -mean log p(u) / (1 x ln 2) in the density phase; ours is the model's own compute_loss.
    from zoo.experiments.thin_spiral import reference_loss_scale

    x = manifolds.thin_spiral(64, seed=3).data.astype("float32")
    model = _spiral_mflow()
    model.phase = phase
    ours = float(model.compute_loss(x=x, training=False))
    if phase == "manifold":
        released = 1000.0 * float(np.mean((x - np.asarray(model.reconstruct_flow_input(x))) ** 2))
    else:
        released = float(np.mean(np.asarray(model.objective_terms(x)["nll_u"]))) / math.log(2.0)
    assert ours * reference_loss_scale("M-flow", 2, phase) == pytest.approx(released, rel=1e-4)


def test_thin_spiral_reference_recipe_trains_mflow_phase_by_phase_with_its_own_optimizer():
    from zoo.experiments import thin_spiral as experiment

    x = manifolds.thin_spiral(200, seed=0).data.astype("float32")
    model = _spiral_mflow()
    outer = [np.array(w) for w in model.flow.get_weights()]
    experiment._train("M-flow", model, x, epochs=2, batch_size=50, recipe="reference", learning_rate=None, verbose=0)
    assert model.phase == "density"
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert model.optimizer.weight_decay == pytest.approx(1e-4)
    assert model.optimizer.global_clipnorm == pytest.approx(5.0 / 2)  # the density phase's scale (D / d = 2)
    assert model.optimizer.iterations.numpy() == 4  # a fresh optimizer: only the density phase's 2 x 2 steps
    assert any(not np.allclose(a, b) for a, b in zip(outer, model.flow.get_weights()))  # the manifold phase ran
    with pytest.raises(ValueError, match="compile the model first"):  # neither compiled nor given optimizers
        dnf.train_mflow(_spiral_mflow(), x)
    with pytest.raises(ValueError, match="`recipe` must be one of"):
        experiment.run_thin_spiral(num_train=10, epochs=1, recipe="sgd")
