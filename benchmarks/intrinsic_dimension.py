r"""Intrinsic-dimension experiments of the spread-prior flows ("On the latent space of flow-based models").

Experiments (``--experiments``, comma-separated; run the cheap ones first):

* ``sin``: 2-D sin curve ``x2 = sin(2 x1)`` (section 7.1): spectrum of ``A A^T``
  (expected dimension 1), samples of the spread model and of the fixed-prior flow.
* ``scurve``: 3-D S-curve (section 7.2): dimension 2 and the 2-D projection
  ``z_proj = z E`` (trustworthiness against the generating coordinates).
* ``fading_square``: 32x32 fading squares (section 7.3): dimension 1, the
  fixed-prior flow's samples, and how the 1-D projection orders the grey level.
* ``mnist5`` / ``mnist10``: synthetic MNIST from an implicit model ``x = g(z)``
  with ``dim(z)`` = 5 / 10 (section 7.4, appendix C.5): the VAE is fitted to
  MNIST (by default as appendix C.5.1: 100 epochs of Adam at 1e-4; ``--vae_epochs``,
  ``--vae_learning_rate``), then the spread flow is trained on its samples with
  data noise 0.05 annealed to the floor 0.01; ``mnist_original``: the same flow
  on the MNIST images themselves (the paper reads 11-14 from its spectrum), with
  the Levina-Bickel MLE on the same data. ``--image_size 16`` is the cheap
  route (MNIST area-resized, the same implicit model and flow at 16x16), and
  ``zoo.training.SpreadSpectrumHistory`` records the spectrum every
  ``--trace_every`` steps to show how the gap emerges. The MNIST runs use the
  paper's Adam rate 5e-4 and, as appendix C.5.2, no weight decay by default
  (``--weight_decay``: coupled L2 on the loss in bits/dim, which hides the gap).

Every experiment trains against a wall-clock budget (``--budget_seconds`` per
model, defaults chosen so that each experiment stays under 10 minutes on a
shared 2-core CPU), stores its numbers in ``--results_dir/<name>.json``,
draws ``docs/figures/spread_<name>.png`` and rewrites the sections
"## Intrinsic dimension with a learnable manifold prior" (sin, S-curve, fading
squares) and "## Intrinsic dimension of MNIST ..." of docs/RESULTS.md from the
results stored so far; a section is rewritten only when every experiment it
shows has stored results.

Usage:

    python benchmarks/intrinsic_dimension.py --experiments sin,scurve
    python benchmarks/intrinsic_dimension.py --experiments fading_square
    python benchmarks/intrinsic_dimension.py --experiments mnist5 --image_size 16 --expected_steps 24000 \
        --steps 24000 --budget_seconds 100000
    (the same for mnist10 and mnist_original)
    python benchmarks/intrinsic_dimension.py --experiments none   # rewrite the doc from stored results

These are minutes of CPU training where the paper trains for 10k-3000k
iterations: the numbers say what such a budget recovers, not what the method
reaches.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import REPO_ROOT, check_json_target, machine_description, write_json, write_section  # noqa: E402

SECTION_HEADING = "## Intrinsic dimension with a learnable manifold prior"
FIGURES = os.path.join(REPO_ROOT, "docs", "figures")
SCRIPT = "python benchmarks/intrinsic_dimension.py"


def _time_budget_callback(seconds, max_steps=None):
    import keras

    class TimeBudget(keras.callbacks.Callback):
        """Stops ``fit`` once ``seconds`` of wall time have passed or ``max_steps`` optimizer steps are done."""

        def on_train_begin(self, logs=None):
            self.start = time.time()

        def on_train_batch_end(self, batch, logs=None):
            done = max_steps is not None and int(np.asarray(self.model.optimizer.iterations)) >= max_steps
            if done or time.time() - self.start > seconds:
                self.model.stop_training = True

    return TimeBudget()


def train(model, data, steps, budget_seconds, optimizer, batch_size=100, callbacks=()):
    """``fit`` for at most ``steps`` optimizer steps and ``budget_seconds``; returns (steps done, seconds, last loss)."""
    steps_per_epoch = int(np.ceil(len(data) / batch_size))
    epochs = int(np.ceil(steps / steps_per_epoch))
    model.compile(optimizer=optimizer)
    start = time.time()
    history = model.fit(data, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True,
                        callbacks=[_time_budget_callback(budget_seconds, steps), *callbacks])
    seconds = time.time() - start
    done = int(np.asarray(model.optimizer.iterations))
    return done, seconds, float(history.history["loss"][-1])


def _numpy(x):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x))


def _samples_at_s0(model, count, seed):
    """Samples on the learned manifold: spread models at noise scale s = 0; a fixed-prior flow (no noise) as is."""
    return _numpy(model.sample(count, noise_scale=0.0 if model.has_observation_noise else None, seed=seed))


def _latents(model, x, batch=500):
    return np.concatenate([_numpy(model.forward(x[i:i + batch])[0]) for i in range(0, len(x), batch)])


def _spectrum_panel(axis, eigenvalues, floor, k, title, count=20):
    shown = eigenvalues[:count]
    axis.bar(np.arange(1, len(shown) + 1), shown, color=["C3" if i < k else "C0" for i in range(len(shown))])
    axis.set_yscale("log")
    axis.axhline(floor, color="k", ls=":", lw=1, label="sigma_Z^2")
    axis.set_title(f"{title}: eigenvalues of AA^T (K = {k})")
    axis.legend(fontsize=7)


def _spectrum_facts(prior):
    eigenvalues = prior.spectrum()
    k = prior.intrinsic_dimension()
    gap = float(eigenvalues[k - 1] / max(eigenvalues[k], prior.spread_std**2)) if k < len(eigenvalues) else None
    return eigenvalues, k, gap


def _save(fig, name):
    import matplotlib

    matplotlib.use("Agg")
    os.makedirs(FIGURES, exist_ok=True)
    path = os.path.join(FIGURES, f"spread_{name}.png")
    fig.savefig(path, dpi=90, bbox_inches="tight")
    return os.path.relpath(path, REPO_ROOT)


def figure(rows, cols, size):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt.figure(figsize=size)


# --------------------------------------------------------------- experiments
def run_vector(name, args):
    """sin curve or S-curve: spread model vs fixed-prior flow."""
    import keras
    from sklearn.manifold import trustworthiness

    import zoo
    from zoo.data import manifolds
    from zoo.evaluation import metrics

    generate = manifolds.sin_curve if name == "sin" else manifolds.s_curve
    data = generate(20000, seed=0)
    test = generate(2000, seed=1)
    steps, lr = VECTOR_STEPS[name], (1e-2 if name == "sin" else 5e-3)
    steps = args.steps or steps
    results = {"experiment": name, "n_train": len(data.data), "batch_size": 100}
    models = {}
    for preset in (f"spread_{name}", f"nf_spread_{name}"):
        keras.utils.set_random_seed(0)
        model = zoo.get(preset)
        optimizer = zoo.training.spread_optimizer(lr, weight_decay=0.1, decay_every=steps // 6, decay_rate=0.7, coupled=False)
        done, seconds, loss = train(model, data.data, steps, args.budget_seconds, optimizer)
        samples = _samples_at_s0(model, 2000, seed=0)
        if name == "sin":
            off = np.abs(samples[:, 1] - np.sin(2 * samples[:, 0]))
        else:
            from sklearn.neighbors import NearestNeighbors

            reference = manifolds.s_curve(200000, seed=2).data
            off = NearestNeighbors(n_neighbors=1).fit(reference).kneighbors(samples)[0][:, 0]
        row = {"steps": done, "train_seconds": round(seconds, 1), "final_loss_bits_per_dim": round(loss, 4),
               "parameters": int(model.count_params()),
               "median_off_manifold_distance": float(np.median(off)),
               "fraction_within_0.05": float(np.mean(off < 0.05))}
        if preset.startswith("spread"):
            eigenvalues, k, gap = _spectrum_facts(model.prior)
            z = _latents(model, test.data)
            projection = _numpy(model.prior.project(z, k))
            row.update({"eigenvalues": [float(e) for e in eigenvalues], "intrinsic_dimension": k, "gap_ratio": gap})
            if name == "scurve" and k == 2:
                row["trustworthiness_10nn"] = float(trustworthiness(test.latent, projection, n_neighbors=10))
        results[preset] = row
        models[preset] = (model, samples)
    results["levina_bickel_mle_k20"] = metrics.levina_bickel_dimension(test.data, k=20)
    results["true_dimension"] = data.intrinsic_dim

    model, samples = models[f"spread_{name}"]
    _, nf_samples = models[f"nf_spread_{name}"]
    z = _latents(model, test.data)
    prior_z = _numpy(model.prior.sample(2000, noise_scale=0.0, seed=1))
    row = results[f"spread_{name}"]
    color = test.latent[:, 0]
    three_d = name == "scurve"
    cols = 6 if three_d else 5
    fig = figure(1, cols, (4.4 * cols, 4))
    panels = [(test.data, "data", color), (samples, "spread model samples (s = 0)", None),
              (nf_samples, "fixed-prior flow samples", None)]
    for index, (points, title, c) in enumerate(panels):
        axis = fig.add_subplot(1, cols, index + 1, projection="3d" if three_d else None)
        coords = [points[:, i] for i in range(points.shape[1])]
        axis.scatter(*coords, s=1, c=c if c is not None else "C0")
        axis.set_title(title)
        if not three_d:
            axis.set_xlim(-4, 4)
            axis.set_ylim(-2, 2)
    axis = fig.add_subplot(1, cols, 4, projection="3d" if three_d else None)
    axis.scatter(*[z[:, i] for i in range(z.shape[1])], s=1, c=color, label="z = f(x)")
    axis.scatter(*[prior_z[:, i] for i in range(prior_z.shape[1])], s=1, c="C1", alpha=0.3, label="prior sample")
    axis.set_title("latent: Q_Z (coloured) and P_Z (orange)")
    if not three_d:  # a few outliers of f(x) would hide the rest
        low, high = np.percentile(np.concatenate([z, prior_z]), [1, 99], axis=0)
        pad = 0.5 * (high - low)
        axis.set_xlim(low[0] - pad[0], high[0] + pad[0])
        axis.set_ylim(low[1] - pad[1], high[1] + pad[1])
    if three_d:
        axis = fig.add_subplot(1, cols, 5)
        projection = _numpy(model.prior.project(z, 2))
        axis.scatter(projection[:, 0], projection[:, 1], s=1, c=color)
        axis.set_title("z_proj = z E (2-D), coloured by position")
    _spectrum_panel(fig.add_subplot(1, cols, cols), np.asarray(row["eigenvalues"]), model.prior.spread_std**2,
                    row["intrinsic_dimension"], name)
    results["figure"] = _save(fig, name)
    return results


def _valid_square_fraction(images, tolerance=0.1):
    """Fraction of images equal (max abs error < tolerance) to a 6x6 centre square of one grey level on black."""
    mask = np.zeros((32, 32, 1), dtype=bool)
    mask[13:19, 13:19] = True
    level = images[:, mask].mean(axis=1)
    ideal = np.where(mask[None], level[:, None, None, None], 0.0)
    error = np.abs(images - ideal).reshape(len(images), -1).max(axis=1)
    return float(np.mean((error < tolerance) & (level > -tolerance) & (level < 1 + tolerance)))


def run_fading_square(args):
    import keras
    from scipy import stats

    import zoo
    from zoo.data import manifolds

    data = manifolds.fading_squares(10000, seed=0, quantize=False)
    test = manifolds.fading_squares(500, seed=1, quantize=False)
    results = {"experiment": "fading_square", "n_train": len(data.data), "batch_size": 100,
               "requested_steps": args.steps or 20000, "budget_seconds": args.budget_seconds}
    samples = {}
    for preset, budget in (("spread_fading_square", args.budget_seconds), ("nf_spread_fading_square", args.budget_seconds / 2)):
        keras.utils.set_random_seed(0)
        model = zoo.get(preset)
        optimizer = zoo.training.spread_optimizer(4e-3, weight_decay=0.1, decay_every=250, decay_rate=0.7)
        done, seconds, loss = train(model, data.data, args.steps or 20000, budget, optimizer)
        drawn = _samples_at_s0(model, 64, seed=0)
        samples[preset] = drawn
        row = {"steps": done, "train_seconds": round(seconds, 1), "final_loss_bits_per_dim": round(loss, 4),
               "parameters": int(model.count_params()), "valid_square_fraction": _valid_square_fraction(
                   _samples_at_s0(model, 500, seed=1))}
        if preset.startswith("spread"):
            eigenvalues, k, gap = _spectrum_facts(model.prior)
            projection = zoo.experiments.intrinsic_dimension.project(model, test.data, 1)[:, 0]
            rho = stats.spearmanr(projection, test.latent[:, 0]).correlation
            row.update({"eigenvalues_top20": [float(e) for e in eigenvalues[:20]], "intrinsic_dimension": k,
                        "gap_ratio": gap, "spearman_projection_vs_grey_level": float(rho)})
            spread_model, spread_projection, spread_eigenvalues, spread_k = model, projection, eigenvalues, k
        results[preset] = row
    results["true_dimension"] = 1

    def grid(images, rows=4):
        pixels = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
        return zoo.evaluation.pictures.tile_images([list(pixels[r * 8:(r + 1) * 8]) for r in range(rows)], scale=1)

    order = np.argsort(spread_projection)
    picked = order[np.linspace(0, len(order) - 1, 16).astype(int)]
    fig = figure(1, 5, (24, 5))
    for index, (images, title) in enumerate(((data.data[:32], "data"),
                                              (samples["spread_fading_square"][:32], "spread model (s = 0)"),
                                              (samples["nf_spread_fading_square"][:32], "fixed-prior flow"))):
        axis = fig.add_subplot(1, 5, index + 1)
        axis.imshow(grid(images), cmap="gray", vmin=0, vmax=255)
        axis.set_title(title)
        axis.axis("off")
    _spectrum_panel(fig.add_subplot(1, 5, 4), spread_eigenvalues, spread_model.prior.spread_std**2, spread_k, "fading squares")
    axis = fig.add_subplot(1, 5, 5)
    axis.scatter(spread_projection, test.latent[:, 0], s=3)
    axis.set_xlabel("z_proj (1-D)")
    axis.set_ylabel("grey level v")
    axis.set_title("projection vs grey level")
    strip = zoo.evaluation.pictures.tile_images([list((test.data[picked] * 255).round().astype(np.uint8))], scale=1)
    inset = fig.add_axes([0.63, -0.12, 0.36, 0.1])
    inset.imshow(strip, cmap="gray", vmin=0, vmax=255)
    inset.set_title("test images sorted by z_proj", fontsize=8)
    inset.axis("off")
    results["figure"] = _save(fig, "fading_square")
    return results


def _resized(images, size):
    """uint8 MNIST ``(n, 28, 28, 1)`` as floats in [0, 1], area-resized to ``size x size`` (28: unchanged)."""
    import keras

    floats = images.astype("float32") / 255.0
    if size == 28:
        return floats
    return np.concatenate([np.clip(_numpy(keras.ops.image.resize(floats[i:i + 5000], (size, size),
                                                                  interpolation="area")), 0.0, 1.0)
                           for i in range(0, len(floats), 5000)])


MNIST_LEARNING_RATE = 5e-4  # the paper's (appendix C.5.2), for 3000k steps there
MNIST_WEIGHT_DECAY = 0.0  # the paper's: appendix C.5.2 gives no weight decay for MNIST
LEGACY_LEARNING_RATE, LEGACY_WEIGHT_DECAY = 4e-3, 0.1  # what results stored without these keys ran with
VAE_EPOCHS, VAE_LEARNING_RATE = 100, 1e-4  # the implicit model's training in appendix C.5.1
PAPER_ACTIVATION = "leaky_relu"  # the conditioners' hidden activation, appendix C.1 (slope 0.2; spread_mnist's)
LEGACY_ACTIVATION = "relu"  # what results stored without the key ran with
LEGACY_VAE_LEARNING_RATE = 1e-3  # what results stored without the key ran with (train_implicit_model's default)


def _learning_rate(result):
    return result.get("learning_rate", LEGACY_LEARNING_RATE)


def _weight_decay(result):
    return result.get("weight_decay", LEGACY_WEIGHT_DECAY)


def _vae_learning_rate(result):
    return result.get("vae_learning_rate", LEGACY_VAE_LEARNING_RATE)


def _activation(result):
    return result.get("conditioner_activation", LEGACY_ACTIVATION)


def _paper_vae(result):
    """Whether the run's implicit model was trained as appendix C.5.1 (100 epochs of Adam at 1e-4)."""
    return result.get("vae_epochs") == VAE_EPOCHS and _vae_learning_rate(result) == VAE_LEARNING_RATE


def mnist_name(latent_dim, size, learning_rate=MNIST_LEARNING_RATE, weight_decay=MNIST_WEIGHT_DECAY):
    """Result name: ``mnist5`` / ``mnist10`` / ``mnist_original`` (latent_dim None), ``_16`` etc. when resized,
    ``_lr0.004`` etc. for another learning rate, ``_wd0.1`` etc. for another weight decay."""
    base = "mnist_original" if latent_dim is None else f"mnist{latent_dim}"
    return (base if size == 28 else f"{base}_{size}") + (
        "" if learning_rate == MNIST_LEARNING_RATE else f"_lr{learning_rate:g}") + (
        "" if weight_decay == MNIST_WEIGHT_DECAY else f"_wd{weight_decay:g}")


def original_mnist_mle(k=20, count=5000):
    """Levina-Bickel MLE on the 28x28 originals of the first ``count`` images the mnist_original runs train on."""
    import zoo
    from zoo.evaluation import metrics

    images, _ = zoo.datasets.load("mnist", "train")
    chosen = np.random.default_rng(0).permutation(len(images))[:20000][:count]
    return metrics.levina_bickel_dimension(images[chosen].astype("float32").reshape(count, -1) / 255.0, k=k)


def run_mnist(latent_dim, args):
    """Synthetic MNIST x = g(z) with dim(z) = ``latent_dim`` (None: the original MNIST images), at ``--image_size``."""
    import keras

    import zoo
    from zoo.evaluation import metrics

    size = args.image_size
    images, _ = zoo.datasets.load("mnist", "train")
    images = _resized(images, size)
    results = {"experiment": args.run_name or mnist_name(latent_dim, size, args.learning_rate, args.weight_decay),
               "base": mnist_name(latent_dim, 28),
               "image_size": size, "true_dimension": latent_dim, "learning_rate": args.learning_rate,
               "weight_decay": args.weight_decay, "conditioner_activation": args.conditioner_activation,
               "batch_size": 100}
    if latent_dim is None:
        data = images[np.random.default_rng(0).permutation(len(images))[:20000]]
    else:
        start = time.time()
        vae = zoo.data.train_implicit_model(images, latent_dim, epochs=args.vae_epochs, batch_size=100,
                                            learning_rate=args.vae_learning_rate, seed=0)
        results.update({"vae_epochs": args.vae_epochs, "vae_learning_rate": args.vae_learning_rate,
                        "vae_seconds": round(time.time() - start, 1),
                        "implicit_model": vae.latent_report(images[:5000], num_samples=300, seed=0)})
        data = zoo.data.synthetic_mnist(20000, vae, seed=0).data
    results.update({"n_train": len(data), "levina_bickel_mle_k20": metrics.levina_bickel_dimension(
        data[:5000].reshape(5000, -1), k=20)})
    if latent_dim is None:
        results["levina_bickel_mle_k20_28x28"] = original_mnist_mle()
    keras.utils.set_random_seed(0)
    model = zoo.get("spread_mnist", image_shape=(size, size, 1), conditioner_activation=args.conditioner_activation)
    steps = args.steps or 20000
    # Section 7.4 anneals 0.05 by 0.9 every 10k of 3000k steps after 2000k, floor 0.01; here compressed into the
    # run: annealing starts after 1/4 of the expected steps and 16 decays (0.05 * 0.9^16 < 0.01) reach the floor
    # at 3/4, so the last quarter trains at the floor; the learning rate decays by 0.7 every 1/5.
    expected = args.expected_steps
    annealing = zoo.training.DataNoiseAnnealing(start_step=expected // 4, every_steps=max(1, expected // 32), factor=0.9, floor=0.01)
    history = zoo.training.SpreadSpectrumHistory(every_steps=args.trace_every)
    optimizer = zoo.training.spread_optimizer(args.learning_rate, weight_decay=args.weight_decay,
                                              decay_every=max(1, expected // 5),
                                              decay_rate=0.7)
    done, seconds, loss = train(model, data, steps, args.budget_seconds, optimizer, callbacks=[annealing, history])
    eigenvalues, k, gap = _spectrum_facts(model.prior)
    results.update({"steps": done, "expected_steps": expected, "trace_every": args.trace_every, "train_seconds": round(seconds, 1),
                    "final_loss_bits_per_dim": round(loss, 4), "final_data_noise": history.history[-1]["data_noise"],
                    "spread_variance": model.prior.spread_std**2, "intrinsic_dimension_rule": k, "gap_ratio": gap,
                    "eigenvalues": [float(e) for e in eigenvalues], "trace": history.history})
    results.update(_gap_facts(eigenvalues, latent_dim, model.prior.spread_std**2))
    samples = _numpy(model.sample(32, noise_scale=0.0, seed=0))
    title = "original MNIST" if latent_dim is None else f"synthetic MNIST, dim(z) = {latent_dim}"
    fig = figure(1, 4, (22, 4.5))
    for index, (imgs, panel) in enumerate(((data[:32], f"{title} ({size}x{size})"),
                                           (samples, "spread model samples (s = 0)"))):
        pixels = (np.clip(imgs, 0, 1) * 255).round().astype(np.uint8)
        axis = fig.add_subplot(1, 4, index + 1)
        axis.imshow(zoo.evaluation.pictures.tile_images([list(pixels[r * 8:(r + 1) * 8]) for r in range(4)], scale=1), cmap="gray")
        axis.set_title(panel)
        axis.axis("off")
    _spectrum_panel(fig.add_subplot(1, 4, 3), eigenvalues, model.prior.spread_std**2, k,
                    "original" if latent_dim is None else f"d = {latent_dim}", count=30)
    _emergence_panel(fig.add_subplot(1, 4, 4), history.history, latent_dim, model.prior.spread_std**2)
    fig.subplots_adjust(wspace=0.3)
    results["figure"] = _save(fig, results["experiment"])
    return results


def _gap_facts(eigenvalues, latent_dim, floor=1e-4):
    """The spectrum's shape: counts above 10 and 3 floors (sigma_Z^2), the largest gap in the top 30 (eigenvalues
    raised to the floor, as the rule does), lambda_d / lambda_d+1."""
    eigenvalues = np.asarray(eigenvalues)
    top = np.maximum(eigenvalues[:31], floor)
    facts = {"count_above_10_floor": int(np.sum(eigenvalues > 10 * floor)),
             "count_above_3_floor": int(np.sum(eigenvalues > 3 * floor)),
             "largest_gap_in_top30": int(np.argmax(top[:-1] / top[1:])) + 1}
    if latent_dim is not None:
        facts["ratio_at_true_dimension"] = float(top[latent_dim - 1] / top[latent_dim])
    return facts


def _emergence_panel(axis, trace, latent_dim, floor):
    steps = [r["step"] for r in trace]
    spectra = np.array([r["eigenvalues"] for r in trace])
    ranks = ([1, 5, 10, 11, 20, 50, 100, 200] if latent_dim is None
             else sorted({1, latent_dim, latent_dim + 1, 20, 50, 100, 200}))
    for rank in [r for r in ranks if r <= spectra.shape[1]]:
        axis.plot(steps, spectra[:, rank - 1], label=f"lambda_{rank}",
                  lw=2 if latent_dim is not None and rank in (latent_dim, latent_dim + 1) else 1)
    axis.axhline(floor, color="k", ls=":", lw=1, label="sigma_Z^2")
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_title("eigenvalues of AA^T by rank during training")
    axis.legend(fontsize=6, ncol=2)


# ------------------------------------------------------------------ the doc
def _fmt(values, digits=3):
    return ", ".join(f"{v:.{digits}g}" for v in values)


VECTOR_STEPS = {"sin": 10000, "scurve": 20000}  # the default steps of each vector experiment

# The paper's result and training length for sections 7.1-7.3 (section 7.1; appendices C.3, C.4).
PAPER_VECTOR = {"sin": (1, "10k"), "scurve": (2, "200k"), "fading_square": (1, "20k")}


def machines_text(results):
    """Which machine ran each stored run: its results file records it (``machine``, since 2026-12-07); a render on
    another machine must not claim its own CPU for runs it did not make."""
    groups = {}
    for name, r in results.items():
        m = r.get("machine")
        key = (f"{m['cpu_model']}, {m['usable_cpus']} usable cores (TF {m['tensorflow']}, Keras {m['keras']})"
               if m else None)
        groups.setdefault(key, []).append(name)
    parts = [f"{', '.join(names)} on {key}" for key, names in groups.items() if key]
    if None in groups:
        parts.append(f"{', '.join(groups[None])}: not recorded, stored before runs recorded their machine")
    return "; ".join(parts) + "; each shared with other jobs"


def section(results):
    lines = [SECTION_HEADING, "",
             "Spread-prior flows (`zoo/models/spread`: volume-preserving couplings + `layers.SpreadPrior`, "
             "sigma_Z = 0.01) against the same flows with non-volume-preserving couplings and a fixed N(0, I) "
             "prior (`nf_spread_*`). Intrinsic dimension K = the number of significant eigenvalues of AA^T "
             "by the rule of `layers.spread.significant_eigenvalue_count` (eigenvalues floored at sigma_Z^2, "
             "K = position of the largest ratio between consecutive eigenvalues if that ratio is >= 10, "
             "else D). Batch 100, step-decayed learning rate, weight decay 0.1 (`zoo.training.spread_optimizer`: "
             "decoupled AdamW for the vectors, coupled `AdamL2` for the images; see its docstring for why). Each model trains "
             f"for its steps or a wall-clock budget, whichever ends first (the tables give the steps reached), on a shared CPU ({machines_text(results)}): minutes where the paper trains for "
             "10k-3000k iterations, so the numbers show what such a budget recovers. One seed (0) for the weights "
             "and the training data (held-out points: seed 1): "
             + ", ".join(f"{name} {r['n_train']:,} training points" for name, r in results.items() if "n_train" in r)
             + "; the spread over seeds is not measured.", "",
             "Wall time of each experiment (training both models, evaluation, figures): "
             + ", ".join(f"{name} {r['wall_seconds']:.0f} s" for name, r in results.items()) + ".", ""]
    if "sin" in results or "scurve" in results:
        lines += ["| data | true dim | model | steps (paper's) | train s | K | paper's K | top eigenvalues | gap ratio | median sample distance to the manifold | samples within 0.05 | other |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name in ("sin", "scurve"):
            if name not in results:
                continue
            r = results[name]
            for preset in (f"spread_{name}", f"nf_spread_{name}"):
                row = r[preset]
                spread_row = preset.startswith("spread")
                other = ""
                if "trustworthiness_10nn" in row:
                    other = f"trustworthiness(10-NN) of z_proj vs the generating (t, height): {row['trustworthiness_10nn']:.3f}"
                if spread_row:
                    other += ("; " if other else "") + f"Levina-Bickel MLE (k=20) on the data: {r['levina_bickel_mle_k20']:.2f}"
                gap = "-" if row.get("gap_ratio") is None else f"{row['gap_ratio']:.3g}"
                lines.append(
                    f"| {name} | {r['true_dimension']} | `{preset}` | {row['steps']} ({PAPER_VECTOR[name][1]}) | "
                    f"{row['train_seconds']} | {row.get('intrinsic_dimension', '-')} | "
                    f"{PAPER_VECTOR[name][0] if spread_row else '-'} | {_fmt(row['eigenvalues']) if spread_row else '-'} | "
                    f"{gap} | "
                    f"{row['median_off_manifold_distance']:.4f} | {row['fraction_within_0.05']:.3f} | {other} |")
        lines.append("")
        for name in ("sin", "scurve"):
            if name in results:
                lines.append(f"![{name}]({os.path.relpath(os.path.join(REPO_ROOT, results[name]['figure']), os.path.join(REPO_ROOT, 'docs'))})")
        full = all(results[name][preset]["steps"] == VECTOR_STEPS[name] for name in ("sin", "scurve")
                   if name in results for preset in (f"spread_{name}", f"nf_spread_{name}"))
        lines += ["", f"Command: `{SCRIPT} --experiments sin,scurve`"
                  + (" (every model ran its steps inside the default 120 s budget; on a slower machine "
                     "`--budget_seconds 100000` keeps the budget from cutting them short)" if full else
                     " (stopped on the 120 s budget: the steps depend on the machine)")
                  + ". Sample distance: sin, |x2 - sin(2 x1)| of "
                  "2000 samples; S-curve, distance to the nearest of 200k noise-free S-curve points. Spread samples "
                  "are drawn from the degenerate prior (noise_scale s = 0).", ""]
    if "fading_square" in results:
        r = results["fading_square"]
        s, n = r["spread_fading_square"], r["nf_spread_fading_square"]
        requested, budget = r.get("requested_steps", 20000), r.get("budget_seconds", 330.0)  # older runs: defaults
        lines += ["| 32x32 fading squares (true dim 1) | steps (paper's) | train s | K | paper's K | top eigenvalues | gap ratio | valid squares among 500 samples | Spearman(z_proj, grey level) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
                  f"| `spread_fading_square` | {s['steps']} ({PAPER_VECTOR['fading_square'][1]}) | {s['train_seconds']} | "
                  f"{s['intrinsic_dimension']} | {PAPER_VECTOR['fading_square'][0]} | "
                  f"{_fmt(s['eigenvalues_top20'][:5])} | {'-' if s['gap_ratio'] is None else format(s['gap_ratio'], '.3g')} | {s['valid_square_fraction']:.3f} | "
                  f"{s['spearman_projection_vs_grey_level']:.4f} |",
                  f"| `nf_spread_fading_square` | {n['steps']} ({PAPER_VECTOR['fading_square'][1]}) | {n['train_seconds']} | - | - | - | - | {n['valid_square_fraction']:.3f} | - |",
                  "", f"![fading squares](figures/{os.path.basename(r['figure'])})", "",
                  f"Command: `{fading_square_command(r)}`. Float images in [0, 1], no data noise "
                  "(as the paper). A sample is a valid square when every pixel is within 0.1 of a 6x6 centre "
                  f"square of its mean grey level on black. Training stops at {requested:,} steps or on a wall-clock "
                  f"budget ({budget:g} s for the spread flow, half of it for the fixed-prior flow), whichever comes "
                  "first"
                  + ("; here at least one stopped on the budget, so its step count, and with it the numbers, depends "
                     "on the machine's speed and load (a machine-independent rerun: `--steps N` with a "
                     "`--budget_seconds` that does not bind trains both models for N steps)"
                     if min(s["steps"], n["steps"]) < requested else "; both ran their steps, so the numbers do not "
                     "depend on the machine's speed") + ".", ""]
    lines += [vector_verdict(results), ""]
    return "\n".join(lines)


def fading_square_command(result):
    """The command that reproduces a stored fading-squares run (runs stored before the settings were recorded used
    the defaults: 20,000 steps, 330 s)."""
    command = f"{SCRIPT} --experiments fading_square"
    if result.get("requested_steps", 20000) != 20000:
        command += f" --steps {result['requested_steps']}"
    if result.get("budget_seconds", 330.0) != 330.0:
        command += f" --budget_seconds {result['budget_seconds']:g}"
    return command


def vector_verdict_word(results):
    """'reproduced' when the spread prior's K is the true dimension on all of sin, S-curve and fading squares."""
    names = ("sin", "scurve", "fading_square")
    ok = all(name in results and results[name][f"spread_{name}"]["intrinsic_dimension"]
             == results[name]["true_dimension"] for name in names)
    return "reproduced" if ok else "not reproduced"


def paper_verdict(vector, images):
    """One verdict on the latent-space paper from sections 7.1-7.3 (``vector``) and 7.4 (``images``)."""
    words = {"sections 7.1-7.3": vector_verdict_word(vector), "section 7.4": mnist_verdict(images, word_only=True)}
    if all(w == "reproduced" for w in words.values()):
        word = "reproduced"
    elif all(w != "not reproduced" for w in words.values()):
        word = "reproduced qualitatively"
    else:
        word = "not reproduced"
    return (f"Verdict on the latent-space paper (sections 7.1-7.4): {word}: "
            + "; ".join(f"{part} {w}" for part, w in words.items())
            + " (the two verdicts above give the numbers and, for 7.4, what limits them).")


def vector_verdict(results):
    """The verdict on sections 7.1-7.3 (sin 1, S-curve 2, fading squares 1) from the stored results."""
    rows = [(name, results[name], results[name][f"spread_{name}"]) for name in ("sin", "scurve", "fading_square")
            if name in results]
    found = [name for name, r, row in rows if row["intrinsic_dimension"] == r["true_dimension"]]
    return ("Verdict on sections 7.1-7.3 (latent-space paper: the spectrum of AA^T gives the intrinsic dimension: 1 "
            "for the sin curve, 2 for the S-curve, 1 for fading squares): "
            + vector_verdict_word(results) + (f" (found for {', '.join(found) or 'none'})" if
                                             0 < len(found) < len(rows) else "") + ": "
            + "; ".join(f"{name} K = {row['intrinsic_dimension']} (true {r['true_dimension']}, gap ratio "
                        + ("none >= 10" if row["gap_ratio"] is None else f"{row['gap_ratio']:.3g}")
                        + f", {row['steps']} steps)" for name, r, row in rows)
            + ". Synthetic and original MNIST (section 7.4): the next section.")


MNIST_SECTION_HEADING = "## Intrinsic dimension of MNIST with a learnable manifold prior (section 7.4)"
PAPER_MNIST = {5: "5 (figure 6a)", 10: "10 (figure 6b)", None: "11-14, no clear step (figure 6c)"}


def _facts(r, record=None):
    """``_gap_facts`` of run ``r``'s final spectrum (``record`` None or the final trace record) or of a trace record,
    with the eigenvalue counts taken from what the run stored before its spectra were rounded to 4 digits for the
    committed file (a recount of rounded values can move an eigenvalue onto the threshold)."""
    final = record is None or record.get("step") == r["steps"]
    eigenvalues = (r if record is None else record)["eigenvalues"]
    facts = _gap_facts(eigenvalues, r["true_dimension"], r["spread_variance"])
    for key, factor in (("count_above_10_floor", 10), ("count_above_3_floor", 3)):
        stored = (r if final else record).get(key)
        if stored is not None:
            facts[key] = int(stored)
        else:  # counted from rounded values: one rounded onto the threshold may have been above it
            # stored to 4 significant digits: only a value equal to the rounded threshold may have been above it
            threshold = float(f"{factor * r['spread_variance']:.4g}")
            facts[key + "_unsure"] = int(np.sum(np.asarray(eigenvalues) == threshold))
    return facts


def _count(facts, key):
    """A count for the tables: "50-51" where rounded values sit on the threshold, so the stored digits cannot say."""
    unsure = facts.get(key + "_unsure", 0)
    return f"{facts[key]}-{facts[key] + unsure}" if unsure else str(facts[key])


def _trace_rows(r, count=8):
    trace = r["trace"]
    picked = sorted({int(i) for i in np.linspace(0, len(trace) - 1, count)})
    d = r["true_dimension"]
    rows = []
    for i in picked:
        record = trace[i]
        facts = _facts(r, record)
        e = record["eigenvalues"]
        ratio = f"{facts['ratio_at_true_dimension']:.2f}" if d is not None else "-"
        rows.append(f"| {record['step']} | {record['data_noise']:.3f} | {_count(facts, 'count_above_10_floor')} | "
                    f"{_count(facts, 'count_above_3_floor')} | {facts['largest_gap_in_top30']} | {ratio} | "
                    + ", ".join(f"{e[rank - 1]:.3g}" if rank <= len(e) else "n/a"
                                for rank in (1, d or 10, (d or 10) + 1, 50, 100)) + " |")
    return rows


def mnist_section(results, vector=None):
    """The section of the MNIST experiments (synthetic d = 5, 10 and the original images) from stored results."""
    lines = [MNIST_SECTION_HEADING, "",
             "Data: synthetic MNIST x = g(z), z ~ N(0, I_d), from the implicit model of appendix C.5.1 "
             "(`zoo.data.train_implicit_model`, fitted to the 60,000 MNIST training images for the listed epochs "
             "with Adam at the listed rate; the paper: 100 epochs at 1e-4), 20,000 samples; and 20,000 original "
             "MNIST training images (seed 0); seed 0 also for the implicit model's training, the synthetic "
             "samples and the flow's initial weights and batches, one seed per run (the spread over seeds is not "
             "measured). The cheap route "
             "keeps the method and shrinks the images: the same implicit model fitted to MNIST area-resized to "
             + ", ".join(f"{n}x{n} (D = {n * n})" for n in sorted({r["image_size"] for r in results.values()}))
             + " (28x28: D = 784, the paper's); the flow is `spread_mnist` at that image shape (appendix C.5 "
             "architecture). Batch 100, `zoo.training.spread_optimizer` (peak learning rate "
             "and coupled L2 weight decay on the loss in bits/dim as listed (the paper: none for MNIST), x0.7 every "
             "1/5 of the expected steps); data noise 0.05 annealed by 0.9 "
             "from 1/4 of the expected steps to the floor 0.01 at 3/4 (the paper: learning rate 5e-4, 3000k steps, annealing every 10k steps "
             "after 2000k, the same floor; read literally, its rate, x0.9 every 10k steps after 1000k, is "
             "5e-4 x 0.9^100 = 1.3e-8 when the annealing starts, so its flows learn at data noise 0.05 and this "
             "compressed schedule, which still trains at the floor, is a choice, not the paper's), sigma_Z^2 = 1e-4. `zoo.training.SpreadSpectrumHistory` records the whole "
             "spectrum of AA^T during training. Levina-Bickel MLE (k = 20) on 5,000 of the same training images. "
             f"Machines: {machines_text(results)}.", "",
             "| data | image | conditioners | learning rate | weight decay | VAE epochs (rate) | "
             "steps (paper: 3,000k) | train s | "
             "final data noise | K (rule) | "
             "largest gap in top 30 | lambda_d / lambda_d+1 | eigenvalues > 10 sigma_Z^2 (first record -> last) | "
             "top 12 eigenvalues | Levina-Bickel MLE | paper's K | wall s | run |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: "
             "| --- "
             "| ---: | --- |"]
    for name, r in results.items():
        d = r["true_dimension"]
        first = _facts(r, r["trace"][0])["count_above_10_floor"]
        last = _facts(r)
        ratio = f"{last['ratio_at_true_dimension']:.2f}" if d is not None else "-"
        lines.append(
            f"| {'original' if d is None else f'dim(z) = {d}'} | {r['image_size']}x{r['image_size']} | "
            f"{_activation(r)} | "
            f"{_learning_rate(r):g} | {_weight_decay(r):g} | "
            + (f"{r['vae_epochs']} ({_vae_learning_rate(r):g})" if "vae_epochs" in r else "-")
            + f" | {r['steps']} | {r['train_seconds']} | {r['final_data_noise']:.3f} | "
            f"{r['intrinsic_dimension_rule']} | {last['largest_gap_in_top30']} | {ratio} | {first} -> "
            f"{last['count_above_10_floor']} of {len(r['eigenvalues'])} | {_fmt(r['eigenvalues'][:12])} | "
            f"{r['levina_bickel_mle_k20']:.2f}"
            + (f" ({r['image_size']}x{r['image_size']}); {r['levina_bickel_mle_k20_28x28']:.2f} (28x28)"
               if r.get("levina_bickel_mle_k20_28x28") and r["image_size"] != 28 else "")
            + f" | {PAPER_MNIST.get(d, '-')} | {r['wall_seconds']:.0f} | `{name}` |")
    lines.append("")
    for name, r in results.items():
        d = r["true_dimension"]
        lines += [f"How the spectrum moves during training, `{name}` ({len(r['trace'])} records):", "",
                  "| step | data noise | eigenvalues > 10 sigma_Z^2 | > 3 sigma_Z^2 | largest gap in top 30 | lambda_d / lambda_d+1 | "
                  f"lambda_1, lambda_{d or 10}, lambda_{(d or 10) + 1}, lambda_50, lambda_100 |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | --- |", *_trace_rows(r), "",
                  f"![{name}](figures/{os.path.basename(r['figure'])})", ""]
    commands = sorted({f"`{SCRIPT} --experiments {r['base']}"
                       f" --image_size {r['image_size']} --expected_steps {r['expected_steps']} --steps {r['steps']}"
                       + (f" --vae_epochs {r['vae_epochs']} --vae_learning_rate {_vae_learning_rate(r):g}"
                          if "vae_epochs" in r else "")
                       + (f" --trace_every {r['trace_every']}" if "trace_every" in r else "")
                       + ("" if _learning_rate(r) == MNIST_LEARNING_RATE else f" --learning_rate {_learning_rate(r):g}")
                       + ("" if _weight_decay(r) == MNIST_WEIGHT_DECAY else f" --weight_decay {_weight_decay(r):g}")
                       + ("" if _activation(r) == PAPER_ACTIVATION else f" --conditioner_activation {_activation(r)}")
                       + (f" --run_name {r['experiment']}" if r["experiment"] != mnist_name(
                           r["true_dimension"], r["image_size"], _learning_rate(r), _weight_decay(r)) else "")
                       + " --budget_seconds 100000`" for r in results.values()})
    lines += ["Commands: " + "; ".join(commands) + ". Figure: data, samples at s = 0, the final spectrum (30 "
              "largest) and eigenvalues by rank against the step.", "", mnist_verdict(results), ""]
    if vector and all(name in vector for name in ("sin", "scurve", "fading_square")):
        lines += [paper_verdict(vector, results), ""]
    return "\n".join(lines)


def _ratio_trend(r, count=3):
    """lambda_d / lambda_d+1 at ``count`` trace records spread over the last 30% of run ``r``: (steps, ratios)."""
    trace = [record for record in r["trace"] if "eigenvalues" in record]
    picks = []
    for fraction in np.linspace(0.7, 1.0, count):
        record = min(trace, key=lambda t: abs(t["step"] - fraction * r["steps"]))
        if record not in picks:
            picks.append(record)
    return ([t["step"] for t in picks],
            [_gap_facts(t["eigenvalues"], r["true_dimension"], r["spread_variance"])["ratio_at_true_dimension"]
             for t in picks])


def steps_text(judged, described, names):
    """Budget or method: whether lambda_d / lambda_d+1 was still rising when each judged run ended, and what more
    steps did where two runs differ only in their steps."""
    parts = []
    for r in judged:
        steps, ratios = _ratio_trend(r)
        if len(ratios) < 2:
            trend = "one record only: no trend"
        else:
            last = ratios[-1] / ratios[-2] - 1
            trend = (f"still rising ({last:+.1%} over the last {steps[-1] - steps[-2]} steps), so more steps of the "
                     "same run may widen it: the budget may limit this number" if last > 0.01 else
                     f"flattening ({last:+.1%} over the last {steps[-1] - steps[-2]} steps)" if last > 0 else
                     "not rising when the run ended")
        parts.append(f"d = {r['true_dimension']}: lambda_d / lambda_d+1 of `{names[id(r)]}` was "
                     f"{', '.join(f'{v:.2f}' for v in ratios)} at steps {', '.join(map(str, steps))}, {trend}")
    def setting(r):  # everything but the steps, with the defaults of runs stored before a key was recorded
        return (r["true_dimension"], r["image_size"], _activation(r), r.get("vae_epochs"), _vae_learning_rate(r),
                _learning_rate(r), _weight_decay(r))

    for a in described:
        for b in described:
            if b["steps"] > a["steps"] and setting(a) == setting(b):
                before, after = _facts(a)["ratio_at_true_dimension"], _facts(b)["ratio_at_true_dimension"]
                stretched = all(r.get("expected_steps") == r["steps"] for r in (a, b))
                parts.append(f"{b['steps'] / a['steps']:.1f}x the steps"
                             + (" (the schedules stretched to them)" if stretched else "")
                             + f", everything else equal (`{names[id(b)]}` against `{names[id(a)]}`, d = "
                             f"{a['true_dimension']}), took lambda_d / lambda_d+1 from {before:.2f} to {after:.2f}"
                             + (": more steps alone did not open the gap at that setting"
                                if after < 10 and after < before * 1.1 else ""))
    return (" Budget or method: " + "; ".join(parts) + ".") if parts else ""


def mnist_verdict(results, word_only=False):
    """The verdict on section 7.4 from the runs at the paper's setting (no weight decay) where there are any;
    runs with weight decay that match one of them in everything else measure what the decay does."""
    synthetic = [r for r in results.values() if r["true_dimension"] is not None]
    if not synthetic:
        return "Verdict: needs the synthetic MNIST runs (mnist5, mnist10)."
    paper_setting = [r for r in synthetic if _weight_decay(r) == 0]
    described = paper_setting or synthetic
    # The verdict reads, per (d, image size), the run closest to the paper (its implicit model first, then its
    # conditioners), the longest of those; the other runs show the way there.
    def _preference(r):
        return _paper_vae(r), _activation(r) == PAPER_ACTIVATION, r["steps"]

    longest = {}
    for r in described:
        key = (r["true_dimension"], r["image_size"])
        if key not in longest or _preference(r) > _preference(longest[key]):
            longest[key] = r
    judged = list(longest.values())
    found = [r for r in judged if r["intrinsic_dimension_rule"] == r["true_dimension"]]

    def describe(r):
        first, last = _facts(r, r["trace"][0]), _facts(r)
        floor_reached = [record for record in r["trace"] if record["data_noise"] is not None
                         and record["data_noise"] <= r["final_data_noise"] * 1.001]
        plateau = ""
        if floor_reached and floor_reached[0]["step"] < r["steps"]:
            at_floor = _facts(r, floor_reached[0])
            plateau = (f" ({at_floor['count_above_10_floor']} when the data noise reached its floor at step "
                       f"{floor_reached[0]['step']}, {last['count_above_10_floor']} after "
                       f"{r['steps'] - floor_reached[0]['step']} more steps at the floor)")
        d, e = r["true_dimension"], np.maximum(np.asarray(r["eigenvalues"]), r["spread_variance"])
        near = max(range(max(1, d - 3), d + 4), key=lambda k: e[k - 1] / e[k])  # the largest step within d +- 3
        knee = ("" if near == d else f"; the largest step within d +- 3 is after rank {near} "
                f"(lambda_{near} / lambda_{near + 1} = {e[near - 1] / e[near]:.2f})")
        vae = f"implicit model {r['vae_epochs']} epochs at {_vae_learning_rate(r):g}" + (
            " (the paper's)" if _paper_vae(r) else "")
        if "implicit_model" in r:  # how strongly g varies along its weakest latent direction
            geometry = r["implicit_model"]
            singular = geometry["decoder_sq_singular_values"]
            vae += (f" (median squared singular values of dg/dz {singular[0]:.3g} down to {singular[-1]:.3g}, "
                    f"{geometry['active_units']} of {d} latent units active; the flow's lambda_1 / lambda_d = "
                    f"{r['eigenvalues'][0] / r['eigenvalues'][d - 1]:.0f} against g's s_1^2 / s_d^2 = "
                    f"{singular[0] / singular[d - 1]:.0f})")
        return (f"dim(z) = {d} at {r['image_size']}x{r['image_size']}, {_activation(r)} conditioners, {vae}, "
                f"learning rate "
                f"{_learning_rate(r):g}, weight decay {_weight_decay(r):g}: K = {r['intrinsic_dimension_rule']}, "
                f"lambda_d / lambda_d+1 = {last['ratio_at_true_dimension']:.2f}{knee}, eigenvalues above 10 sigma_Z^2 "
                f"{first['count_above_10_floor']} -> {last['count_above_10_floor']} in {r['steps']} steps" + plateau)

    same = ("true_dimension", "image_size", "steps", "expected_steps")
    pairs = [(r, p) for r in synthetic if _weight_decay(r) > 0 for p in paper_setting
             if all(r.get(k) == p.get(k) for k in same) and _learning_rate(r) == _learning_rate(p)
             and _activation(r) == _activation(p) and _vae_learning_rate(r) == _vae_learning_rate(p)]
    decay_text = "".join(
        f" What the weight decay does, everything else equal (dim(z) = {r['true_dimension']}, "
        f"{r['image_size']}x{r['image_size']}, learning rate {_learning_rate(r):g}, {r['steps']} steps): coupled L2 "
        f"{_weight_decay(r):g} on the loss in bits/dim, i.e. {_weight_decay(r):g} x D ln 2 = "
        f"{_weight_decay(r) * r['image_size'] ** 2 * np.log(2):.1f} on the paper's loss in nats per example, gives "
        f"K = {r['intrinsic_dimension_rule']} and lambda_d / lambda_d+1 = "
        f"{_gap_facts(r['eigenvalues'], r['true_dimension'], r['spread_variance'])['ratio_at_true_dimension']:.2f} "
        f"against K = {p['intrinsic_dimension_rule']} and "
        f"{_gap_facts(p['eigenvalues'], p['true_dimension'], p['spread_variance'])['ratio_at_true_dimension']:.2f} "
        "without it (why is not measured; a likely mechanism: the decay holds the small conditioner networks near "
        "their zero-initialised output layers, so the flow stays close to the identity)." for r, p in pairs)
    original = [r for r in results.values() if r["true_dimension"] is None and _weight_decay(r) == 0] or [
        r for r in results.values() if r["true_dimension"] is None]
    original_text = "".join(
        f" Original MNIST ({r['image_size']}x{r['image_size']}, weight decay {_weight_decay(r):g}): Levina-Bickel "
        f"MLE {r['levina_bickel_mle_k20']:.1f} on the training images of the run, "
        f"{r.get('levina_bickel_mle_k20_28x28') or original_mnist_mle():.1f} on the same images at 28x28 (the "
        "paper's spread estimate 11-14, from 28x28); the spread prior's largest gap in the top 30 is at "
        f"{_facts(r)['largest_gap_in_top30']} with {_facts(r)['count_above_10_floor']} eigenvalues above "
        "10 sigma_Z^2." for r in original)
    names = {id(r): name for name, r in results.items()}

    def deviations(r):
        """How run ``r`` differs from the paper's setting, beyond its steps (always fewer here)."""
        out = [] if r["image_size"] == 28 else [f"{r['image_size']}x{r['image_size']} images"]
        if _activation(r) != PAPER_ACTIVATION:
            out.append(f"{_activation(r)} conditioners (the paper's: {PAPER_ACTIVATION})")
        if not _paper_vae(r):
            out.append(f"an implicit model of {r['vae_epochs']} epochs at {_vae_learning_rate(r):g} (the paper's: "
                       f"{VAE_EPOCHS} at {VAE_LEARNING_RATE:g})")
        if _weight_decay(r):
            out.append(f"weight decay {_weight_decay(r):g} (the paper's: none)")
        return out

    judged.sort(key=lambda r: r["true_dimension"])
    if len(found) == len(judged):
        verdict = "reproduced qualitatively" if any(deviations(r) for r in judged) else "reproduced"
    else:
        verdict = "not reproduced"
    if word_only:
        return verdict

    def gap_text(r):
        if r in found:
            return "the gap is at d"
        facts = _facts(r)
        if facts["largest_gap_in_top30"] == r["true_dimension"]:  # the right place, below the rule's threshold
            return (f"no gap at d by the rule (a ratio >= 10), though the largest ratio in the top 30 is at d "
                    f"(lambda_d / lambda_d+1 = {facts['ratio_at_true_dimension']:.2f})")
        return "no gap at d"

    per_d = "; ".join(
        f"d = {r['true_dimension']}: {gap_text(r)} in `{names[id(r)]}`"
        + (f", which differs from the paper in {', '.join(deviations(r))}" if deviations(r) else
           ", at the paper's setting") for r in judged)
    setting = "" if paper_setting else " (every run has weight decay; the paper's setting, none, has not been run)"
    return (f"Verdict on section 7.4 (latent-space paper: the spectrum of AA^T shows d large eigenvalues for synthetic "
            "MNIST with d = 5 and 10; judged per d on the run closest to the paper, its implicit model first, then its "
            f"conditioners' activation, the longest of those): {verdict}{setting}. {per_d}. The runs: "
            + "; ".join(f"`{names[id(r)]}`, " + describe(r) for r in described)
            + f". The steps are at most {max(r['steps'] for r in described) / 3_000_000:.1%} of the paper's 3,000k "
            "and the "
            "images are smaller than the paper's 28x28 where listed." + steps_text(judged, described, names)
            + decay_text + original_text)


def compact(result):
    """``result`` with its spectra rounded to 4 significant digits (the stored files are committed)."""
    def rounded(values):
        return [float(f"{v:.4g}") for v in values]

    out = dict(result)
    floor = result.get("spread_variance")
    if "eigenvalues" in out:
        out["eigenvalues"] = rounded(out["eigenvalues"])
    if "trace" in out:
        out["trace"] = [dict(record, eigenvalues=rounded(record["eigenvalues"]), **(
            {} if floor is None else {k: v for k, v in _gap_facts(record["eigenvalues"], None, floor).items()
                                      if k.startswith("count_")}))
                        if "eigenvalues" in record else record for record in out["trace"]]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", default="sin,scurve")
    parser.add_argument("--budget_seconds", type=float, default=None,
                        help="wall-clock training budget per model (default: 120 for vectors, 330 for images)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per model (default per experiment)")
    parser.add_argument("--expected_steps", type=int, default=3000, help="MNIST: steps the schedules are shaped for")
    parser.add_argument("--vae_epochs", type=int, default=VAE_EPOCHS,
                        help="MNIST: epochs of the implicit model (appendix C.5.1: 100)")
    parser.add_argument("--conditioner_activation", default=PAPER_ACTIVATION,
                        help="MNIST: the flow's conditioner activation (appendix C.1: leaky_relu, slope 0.2; the "
                             "runs stored before it was recorded used relu)")
    parser.add_argument("--vae_learning_rate", type=float, default=VAE_LEARNING_RATE,
                        help="MNIST: Adam rate of the implicit model (appendix C.5.1: 1e-4)")
    parser.add_argument("--image_size", type=int, default=28,
                        help="MNIST: side of the images (28; 16 is the cheap route: MNIST area-resized, then the same "
                             "implicit model and flow at that size)")
    parser.add_argument("--trace_every", type=int, default=500, help="MNIST: steps between spectrum records")
    parser.add_argument("--run_name", default=None,
                        help="MNIST: name of the result and figure (default from the experiment, size and learning "
                             "rate; give one to keep a longer run beside a shorter one)")
    parser.add_argument("--learning_rate", type=float, default=MNIST_LEARNING_RATE,
                        help="MNIST: peak learning rate of spread_optimizer (the paper: 5e-4)")
    parser.add_argument("--weight_decay", type=float, default=MNIST_WEIGHT_DECAY,
                        help="MNIST: coupled L2 weight decay of spread_optimizer, on the loss in bits/dim")
    parser.add_argument("--results_dir",
                        default=os.path.join(REPO_ROOT, "benchmarks", "results", "intrinsic_dimension"),
                        help="where each experiment's numbers are stored (committed, so that a section built from "
                             "several runs can be rewritten on another machine)")
    parser.add_argument("--doc", default=os.path.join(REPO_ROOT, "docs", "RESULTS.md"))
    args = parser.parse_args()
    if not 4 <= args.image_size <= 28 or args.image_size % 4:
        raise SystemExit(f"--image_size must be a multiple of 4 in [4, 28] (two squeezes); received {args.image_size}.")
    os.makedirs(args.results_dir, exist_ok=True)
    mnist = {"mnist5": 5, "mnist10": 10, "mnist_original": None}
    chosen = [n for n in args.experiments.split(",") if n and n != "none"]  # "none": only rewrite the doc
    if args.run_name and sum(n in mnist for n in chosen) > 1:
        raise SystemExit("--run_name names one MNIST run; give one MNIST experiment with it.")
    for name in chosen:  # refuse a results file this script did not write before any training, not after
        stem = name if name not in mnist else args.run_name or mnist_name(mnist[name], args.image_size,
                                                                            args.learning_rate, args.weight_decay)
        check_json_target(os.path.join(args.results_dir, f"{stem}.json"), benchmark="intrinsic_dimension")
    for name in chosen:
        start = time.time()
        budget = args.budget_seconds
        args.budget_seconds = budget or (120.0 if name in ("sin", "scurve") else 330.0)
        if name in ("sin", "scurve"):
            result = run_vector(name, args)
        elif name == "fading_square":
            result = run_fading_square(args)
        elif name in mnist:
            result = run_mnist(mnist[name], args)
        else:
            raise SystemExit(f"unknown experiment {name!r}; choose from sin, scurve, fading_square, "
                             + ", ".join(mnist))
        args.budget_seconds = budget
        result["wall_seconds"] = round(time.time() - start, 1)
        result["machine"], result["date"] = machine_description(), time.strftime("%Y-%m-%d")
        write_json(os.path.join(args.results_dir, f"{result['experiment']}.json"), compact(result),
                   benchmark="intrinsic_dimension")
        print(json.dumps({k: v for k, v in result.items() if k not in ("trace", "eigenvalues")})[:2000])
    stored = {}
    for path in sorted(os.listdir(args.results_dir)):
        if path.endswith(".json"):
            with open(os.path.join(args.results_dir, path)) as f:
                stored[path[:-5]] = json.load(f)
    vector = {name: stored[name] for name in ("sin", "scurve", "fading_square") if name in stored}
    order = {"mnist5": 0, "mnist10": 1, "mnist_original": 2}
    images = dict(sorted(((name, r) for name, r in stored.items() if r.get("base") in order),
                         key=lambda item: (order[item[1]["base"]], item[1]["image_size"])))
    # A section is rewritten only from a complete set of results, so that a run of one experiment never drops the
    # others' rows from the doc (their results may live on another machine).
    for heading, part, needed, write in (
            (SECTION_HEADING, vector, ("sin", "scurve", "fading_square"), section),
            (MNIST_SECTION_HEADING, images, ("mnist5", "mnist10", "mnist_original"),
             lambda part: mnist_section(part, vector))):
        missing = [n for n in needed if not any(r.get("base", name) == n for name, r in part.items())]
        if missing:
            print(f"Not rewriting {heading!r} of {args.doc}: no stored results in {args.results_dir} for "
                  f"{', '.join(missing)} (run --experiments {','.join(missing)} first).")
            continue
        text = write(part)
        write_section(args.doc, heading, text)
        print(text)


if __name__ == "__main__":
    main()
