"""The thin-spiral experiment of the DNF paper (section 5.1, figure 2): NF, M-flow, DNF and PIE side by side."""

import math

import keras
import numpy as np

from zoo.data.manifolds import thin_spiral, thin_spiral_alpha, thin_spiral_map
from zoo.evaluation.pictures import figure
from zoo.models.dnf.builders import coupling_flow, make_vector_dnf
from zoo.models.dnf.model import DenoisingFlow, train_mflow
from zoo.models.flow.model import FlowModel

# ------------------------------------------------- thin-spiral experiment (DNF section 5.1)
def thin_spiral_log_speed(u, winding="reference"):
    """``log sqrt(det G_g(u)) = log |g'(u)|`` of the thin-spiral map ``g`` of ``zoo.manifolds.thin_spiral_map``.

    With ``r = alpha sqrt(u)``: ``|dg/dr| = sqrt(1 + r^2) / 3`` and ``dr/du =
    alpha / (2 sqrt(u))``, so ``|g'(u)| = alpha sqrt(1 + alpha^2 u) / (6 sqrt(u))``.
    """
    u = np.asarray(u, dtype=np.float64)
    alpha = thin_spiral_alpha(winding)
    return math.log(alpha / 6.0) + 0.5 * np.log1p(alpha**2 * u) - 0.5 * np.log(u)


PAPER_CUT = 1.0 / 3.0  # section 5.1's text: p(x) = 0 where |v(x)| > sigma / 3
REFERENCE_CUT = 1.0 / math.sqrt(3.0)  # the released evaluate.py: where sum(v^2) > sigma^2 / 3


def manifold_log_density(model, x, batch_size=500, threshold=PAPER_CUT):
    """The density a model reports for points on the data manifold, as NumPy.

    DNF / PIE: ``on_manifold_log_prob`` (section 5.1; zero density where
    ``|v(x)| > threshold * sigma``); M-flow: ``manifold_log_prob`` (eq. 16);
    any other flow: ``log_prob`` (a ``D``-dimensional density, out of scale
    on a manifold).
    """
    if isinstance(model, DenoisingFlow):
        def fn(v):
            return model.on_manifold_log_prob(v, threshold=threshold)
    else:
        fn = model.log_prob
    x = np.asarray(x, dtype="float32")
    return np.concatenate([np.asarray(fn(x[i : i + batch_size])) for i in range(0, len(x), batch_size)])


def latent_density_distances(u, learned, true):
    """Distances between a learned and the true latent density on a 1-D grid ``u`` (trapezoid rule).

    Returns a dict: ``total_variation`` = ``0.5 int |learned - true| du``
    (scale and shape), ``wasserstein_1`` and ``kolmogorov_smirnov`` (the
    largest gap between the cumulative distributions) between the two
    densities each normalized over the grid (shape only; ``nan`` when the
    learned one has no mass), and ``learned_mass`` = ``int learned du``.
    """
    u, learned, true = (np.asarray(a, dtype=np.float64) for a in (u, learned, true))
    learned = np.where(np.isfinite(learned), learned, 0.0)
    steps = np.diff(u)

    def cumulative(f):
        return np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * steps)])

    mass, true_mass = cumulative(learned)[-1], cumulative(true)[-1]
    w1 = ks = float("nan")
    if mass > 0:
        gap = np.abs(cumulative(learned) / mass - cumulative(true) / true_mass)
        w1 = float(np.sum(0.5 * (gap[1:] + gap[:-1]) * steps))
        ks = float(gap.max())
    tv = 0.5 * np.sum(0.5 * (np.abs(learned - true)[1:] + np.abs(learned - true)[:-1]) * steps)
    return {"total_variation": float(tv), "wasserstein_1": w1, "kolmogorov_smirnov": ks, "learned_mass": float(mass)}


def induced_latent_density(model, u, scale=0.3, winding="reference", threshold=PAPER_CUT):
    """DNF section 5.1: ``pi_hat(u) = p_model(g(u)) sqrt(det G_g(u))`` against the true ``Exp(scale)`` density.

    Returns ``(pi_hat, pi)`` on ``u`` (NumPy); ``pi_hat = pi`` exactly when
    the model's on-manifold density is right.
    """
    u = np.asarray(u, dtype=np.float64)
    log_p = manifold_log_density(model, thin_spiral_map(u, winding).astype("float32"), threshold=threshold)
    return np.exp(log_p + thin_spiral_log_speed(u, winding)), np.exp(-u / scale) / scale


def compiled(fn):
    """``fn`` as a graph function on the TensorFlow backend (``tf.function``), unchanged otherwise."""
    if keras.backend.backend() != "tensorflow":
        return fn
    import tensorflow as tf

    return tf.function(fn, reduce_retracing=True)


def time_density(fn, x, repeats=3):
    """Median wall seconds of ``fn(x)`` over ``repeats`` calls, after one warm-up call (which traces)."""
    import time

    np.asarray(fn(x))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(fn(x))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def density_timing(mflow_model, dnf_model, x, repeats=3):
    """Seconds for one density evaluation of the batch ``x``: M-flow (full Gram determinant) vs DNF.

    The DNF's on-manifold density is timed in the outer flow's input space
    (``space="flow_input"``, the paper's comparison: no Jacobian; for data
    without preprocessing the same as the data-space density). Both run as
    compiled graph functions (``compiled``); returns a dict with ``points``,
    ``mflow_seconds``, ``dnf_seconds`` and their ``ratio``.
    """
    timing = {"points": int(len(x)),
              "mflow_seconds": time_density(compiled(mflow_model.log_prob), x, repeats),
              "dnf_seconds": time_density(compiled(lambda v: dnf_model.on_manifold_log_prob(v, space="flow_input")),
                                          x, repeats)}
    timing["ratio"] = timing["mflow_seconds"] / timing["dnf_seconds"]
    return timing


# The authors' released training set-up for the thin spiral (chrvt/denoising-normalizing-flow:
# experiments/configs/train_{dnf,mf,flow}_thin_spiral.config and experiments/training/trainer.py): AdamW
# (lr 3e-4, weight decay 1e-4), cosine annealing to 0 over each training call (the DNF restarts it every 50
# epochs), gradient norm clipped at 5, 10% of the points held out for validation; M-flow sequential with half
# of the epochs per phase and the reconstruction weighted 1000. The paper's text gives none of it.
REFERENCE_RECIPE = {"learning_rate": 3e-4, "weight_decay": 1e-4, "clipnorm": 5.0, "validation_split": 0.1,
                    "dnf_restart_epochs": 50, "mflow_mse_factor": 1000.0}
RECIPES = ("reference", "adam")


def reference_loss_scale(label, num_dims, phase=None):
    """How many times the reference's loss is this project's loss (bits/dim over ``D``), per model.

    Clipping the gradient norm of ``c * loss`` at 5 is clipping that of
    ``loss`` at ``5 / c``, and Adam(W)'s step does not depend on a constant
    loss scale (up to its epsilon), so the reference's clipping is matched
    by dividing the clip norm by this factor. Reference losses: NF / PIE
    ``NLL / (D ln 2)`` (as ours); DNF ``NLL + MSE`` in nats (MSE the mean
    over the ``D`` coordinates); M-flow ``1000 MSE`` (manifold phase) and
    ``NLL_u / (d ln 2)`` with ``d = 1`` (density phase).
    """
    if label in ("NF", "PIE"):
        return 1.0
    if label == "DNF":
        return num_dims * math.log(2.0)
    if label == "M-flow" and phase == "manifold":
        return REFERENCE_RECIPE["mflow_mse_factor"] * math.log(2.0)  # ours: sum of squares / (D ln 2)
    if label == "M-flow" and phase == "density":
        return float(num_dims)  # ours: NLL_u / (D ln 2); the reference's: NLL_u / (1 x ln 2)
    raise ValueError(f"reference_loss_scale: unknown model {label!r} / phase {phase!r}.")


def reference_optimizer(steps_per_epoch, cycle_epochs, loss_scale):
    """AdamW as the reference trains the thin spiral: cosine annealing to 0 over ``cycle_epochs`` (restarted after
    each cycle; per step here, per epoch there), weight decay 1e-4 and the clip norm 5 carried to this loss scale."""
    schedule = keras.optimizers.schedules.CosineDecayRestarts(
        REFERENCE_RECIPE["learning_rate"], first_decay_steps=int(steps_per_epoch * cycle_epochs), t_mul=1.0,
        m_mul=1.0, alpha=0.0)
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=REFERENCE_RECIPE["weight_decay"],
                                  global_clipnorm=REFERENCE_RECIPE["clipnorm"] / loss_scale)


def _train(label, model, data, epochs, batch_size, recipe, learning_rate, verbose):
    """Trains one thin-spiral model with ``recipe`` (``"reference"``: the authors' set-up; ``"adam"``: Adam at a
    constant ``learning_rate``, M-flow ``epochs`` per phase)."""
    if recipe == "adam":
        model.compile(optimizer=keras.optimizers.Adam(learning_rate))
        if label == "M-flow":
            train_mflow(model, data, "sequential", epochs, epochs, batch_size=batch_size, verbose=verbose)
        else:
            model.fit(data, batch_size=batch_size, epochs=epochs, verbose=verbose)
        return
    steps_per_epoch = math.ceil(len(data) / batch_size)
    dims = data.shape[-1]
    if label == "M-flow":  # sequential: a fresh optimizer per phase, as the reference's two training calls
        phase_epochs = {"manifold": epochs // 2, "density": epochs - epochs // 2}
        train_mflow(model, data, "sequential", phase_epochs["manifold"], phase_epochs["density"],
                    optimizers=lambda phase: reference_optimizer(steps_per_epoch, phase_epochs[phase],
                                                                 reference_loss_scale(label, dims, phase)),
                    batch_size=batch_size, verbose=verbose)
        return
    cycle = min(epochs, REFERENCE_RECIPE["dnf_restart_epochs"]) if label == "DNF" else epochs
    model.compile(optimizer=reference_optimizer(steps_per_epoch, cycle, reference_loss_scale(label, dims)))
    model.fit(data, batch_size=batch_size, epochs=epochs, verbose=verbose)


def make_thin_spiral_nf(num_couplings=9, hidden_units=64, num_bins=5, tail_bound=3.0, name="nf_spiral_spline"):
    """The NF baseline of section 5.1 with the DNF's outer architecture: a spline coupling flow, unit Gaussian."""
    return FlowModel(coupling_flow(2, num_couplings, hidden_units, 2, "spline", num_bins, tail_bound), (2,), name=name)


def run_thin_spiral(num_train=10000, epochs=10, batch_size=100, learning_rate=1e-3, num_couplings=9, hidden_units=64,
                    grid_size=100, timing_points=500, latent_points=400, seed=0, winding="reference", verbose=0,
                    log=print, recipe="reference"):
    """Section 5.1: trains NF, M-flow (sequential), DNF (sigma^2 = 0.01, lambda = 1) and PIE on the thin spiral.

    Every model has the same outer architecture (``num_couplings`` spline
    couplings of ``hidden_units``) and sees ``epochs`` passes over
    ``num_train`` points (M-flow: ``epochs`` in each phase). Evaluates each
    density on a ``grid_size^2`` grid, the induced latent density against the
    true ``pi(u)`` on ``latent_points`` values of ``u``, and times one
    density evaluation of ``timing_points`` points (M-flow: full Gram
    determinant; DNF: no Jacobian). ``winding`` is ``zoo.manifolds.thin_spiral``'s
    (default ``"reference"``: the authors' simulator, as the paper's figure 2).
    ``recipe="reference"`` trains as the authors' released code does
    (``REFERENCE_RECIPE``: AdamW 3e-4, cosine, clipping, 90% of the points,
    M-flow ``epochs / 2`` per phase; ``learning_rate`` unused); ``"adam"``:
    Adam at ``learning_rate`` on all points, M-flow ``epochs`` per phase.

    Returns:
        A dict with ``models``, ``grid`` (axis values and per-model
        densities), ``latent`` (``u``, true and per-model induced densities),
        ``metrics`` (per model: distances, reconstruction error, train
        seconds) and ``timing``.
    """
    import time

    if recipe not in RECIPES:
        raise ValueError(f"run_thin_spiral: `recipe` must be one of {RECIPES}; received {recipe!r}.")
    if recipe == "reference" and epochs < 2:
        raise ValueError(f"run_thin_spiral: recipe='reference' splits M-flow's epochs between its two phases, so it "
                         f"needs epochs >= 2; received {epochs}. Pass epochs=2 or more, or recipe='adam'.")
    keras.utils.set_random_seed(seed)  # initial weights, shuffling and noise draws
    data = thin_spiral(num_train, seed=seed, winding=winding).data
    # The reference holds 10% out for validation (its best-epoch restore keeps `state_dict()` without a copy,
    # i.e. the live weights, so the final weights are what it keeps): train on the other 90%, keep the last.
    train_data = (data[: int(round(len(data) * (1 - REFERENCE_RECIPE["validation_split"])))]
                  if recipe == "reference" else data)
    test = thin_spiral(1000, seed=seed + 1, winding=winding).data
    spiral = dict(num_couplings=num_couplings, hidden_units=hidden_units, num_bins=5, tail_bound=3.0)
    models = {
        "NF": make_thin_spiral_nf(**spiral),
        "M-flow": make_vector_dnf(2, 1, mode="mflow", seed=seed, name="mflow", **spiral),
        "DNF": make_vector_dnf(2, 1, mode="dnf", noise_std=0.1, reconstruction_weight=1.0, seed=seed, name="dnf",
                               **spiral),
        "PIE": make_vector_dnf(2, 1, mode="pie", seed=seed, name="pie", **spiral),
    }
    metrics = {}
    for label, model in models.items():
        start = time.perf_counter()
        _train(label, model, train_data, epochs, batch_size, recipe, learning_rate, verbose)
        metrics[label] = {"train_seconds": time.perf_counter() - start}
        if isinstance(model, DenoisingFlow):
            residual = test - np.asarray(model.reconstruct_flow_input(test))  # vectors: flow input = data
            metrics[label]["reconstruction_mse"] = float(np.mean(np.sum(residual**2, axis=-1)))
        log(f"{label}: trained in {metrics[label]['train_seconds']:.1f} s")

    extent = float(np.abs(data).max()) * 1.15
    axis_values = np.linspace(-extent, extent, grid_size)
    xx, yy = np.meshgrid(axis_values, axis_values)
    points = np.stack([xx.ravel(), yy.ravel()], axis=1)
    grid = {"axis": axis_values}
    u = np.linspace(1e-3, 2.0, latent_points)
    latent = {"u": u}
    for label, model in models.items():
        grid[label] = np.exp(manifold_log_density(model, points)).reshape(grid_size, grid_size)
        latent[label], latent["true"] = induced_latent_density(model, u, winding=winding)
        metrics[label].update(latent_density_distances(u, latent[label], latent["true"]))
        if label in ("DNF", "PIE"):  # the released evaluation's wider cut, beside the paper text's
            wider, _ = induced_latent_density(model, u, winding=winding, threshold=REFERENCE_CUT)
            metrics[label]["reference_cut"] = latent_density_distances(u, wider, latent["true"])
        log(f"{label}: TV {metrics[label]['total_variation']:.3f}, W1 {metrics[label]['wasserstein_1']:.3f}")

    timing = density_timing(models["M-flow"], models["DNF"], test[:timing_points])
    dnf_model = models["DNF"]
    # Proposition 1 concerns points of the learned manifold: project the test points onto it first, then compare
    # the estimate there with the exact Gram determinant at the same points' latents.
    on_manifold = np.asarray(dnf_model.reconstruct_flow_input(test[:200]))  # vectors: flow input = data
    estimate = np.asarray(dnf_model.log_gram_det_estimate(on_manifold))
    exact = 2.0 * np.asarray(dnf_model.generator_gram_log_det(dnf_model.encode(on_manifold)))
    metrics["DNF"]["prop1_log_gram_mean_abs_error"] = float(np.mean(np.abs(estimate - exact)))
    return {"models": models, "grid": grid, "latent": latent, "metrics": metrics, "timing": timing, "winding": winding,
            "data": data}


def plot_thin_spiral(results, path):
    """Figure 2 of the paper: learned densities on the grid (top) and induced latent densities (bottom)."""


    labels = [k for k in results["models"]]
    axis = results["grid"]["axis"]
    extent = [axis[0], axis[-1], axis[0], axis[-1]]
    latent = results["latent"]

    def draw(figure):
        top = figure.add_subplot(2, len(labels) + 1, 1)
        top.scatter(results["data"][:2000, 0], results["data"][:2000, 1], s=0.5)
        top.set_xlim(extent[:2])
        top.set_ylim(extent[2:])
        top.set_aspect("equal")
        top.set_title("data")
        bottom = figure.add_subplot(2, len(labels) + 1, len(labels) + 2)
        bottom.plot(latent["u"], latent["true"], "k")
        bottom.set_title("true pi(u)")
        bottom.set_xlabel("u")
        for i, label in enumerate(labels):
            density = results["grid"][label]
            shown = figure.add_subplot(2, len(labels) + 1, i + 2)
            shown.imshow(density, origin="lower", extent=extent, cmap="viridis",
                         vmax=np.quantile(density[density > 0], 0.99) if np.any(density > 0) else None)
            shown.set_title(label)
            curve = figure.add_subplot(2, len(labels) + 1, len(labels) + i + 3)
            curve.plot(latent["u"], latent["true"], "k", label="true")
            curve.plot(latent["u"], latent[label], "r", label=label)
            curve.set_ylim(0, 1.5 * latent["true"].max())
            tv = results["metrics"][label]["total_variation"]
            curve.set_title(f"{label}: TV {tv:.2f}")
            curve.set_xlabel("u")
            curve.legend(fontsize=7)
    return figure(path, draw, size=(3.2 * (len(labels) + 1), 6.4))
