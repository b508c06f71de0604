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
  MNIST for a few epochs, then the spread flow is trained on its samples with
  data noise 0.05 annealed to the floor 0.01.

Every experiment trains against a wall-clock budget (``--budget_seconds`` per
model, defaults chosen so that each experiment stays under 10 minutes on a
shared 2-core CPU), stores its numbers in ``--results_dir/<name>.json``,
draws ``docs/figures/spread_<name>.png`` and rewrites the section
"## Intrinsic dimension with a learnable manifold prior" of docs/RESULTS.md
from every result stored so far.

Usage:

    python benchmarks/intrinsic_dimension.py --experiments sin,scurve
    python benchmarks/intrinsic_dimension.py --experiments fading_square
    python benchmarks/intrinsic_dimension.py --experiments mnist5
    python benchmarks/intrinsic_dimension.py --experiments mnist10
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
from benchmarks.common import REPO_ROOT, machine_description, write_section  # noqa: E402

SECTION_HEADING = "## Intrinsic dimension with a learnable manifold prior"
FIGURES = os.path.join(REPO_ROOT, "docs", "figures")
SCRIPT = "python benchmarks/intrinsic_dimension.py"


def _time_budget_callback(seconds):
    import keras

    class TimeBudget(keras.callbacks.Callback):
        """Stops ``fit`` once ``seconds`` of wall time have passed (checked after every batch)."""

        def on_train_begin(self, logs=None):
            self.start = time.time()

        def on_train_batch_end(self, batch, logs=None):
            if time.time() - self.start > seconds:
                self.model.stop_training = True

    return TimeBudget()


def train(model, data, steps, budget_seconds, optimizer, batch_size=100, callbacks=()):
    """``fit`` for at most ``steps`` optimizer steps and ``budget_seconds``; returns (steps done, seconds, last loss)."""
    steps_per_epoch = int(np.ceil(len(data) / batch_size))
    epochs = int(np.ceil(steps / steps_per_epoch))
    model.compile(optimizer=optimizer)
    start = time.time()
    history = model.fit(data, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True,
                        callbacks=[_time_budget_callback(budget_seconds), *callbacks])
    seconds = time.time() - start
    done = int(np.asarray(model.optimizer.iterations))
    return done, seconds, float(history.history["loss"][-1])


def _numpy(x):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x))


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
    steps, lr = (10000, 1e-2) if name == "sin" else (20000, 5e-3)
    steps = args.steps or steps
    results = {"experiment": name, "n_train": len(data.data), "batch_size": 100}
    models = {}
    for preset in (f"spread_{name}", f"nf_spread_{name}"):
        keras.utils.set_random_seed(0)
        model = zoo.get(preset)
        optimizer = zoo.training.spread_optimizer(lr, weight_decay=0.1, decay_every=steps // 6, decay_rate=0.7, coupled=False)
        done, seconds, loss = train(model, data.data, steps, args.budget_seconds, optimizer)
        samples = _numpy(model.sample(2000, noise_scale=0.0, seed=0))
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
    results = {"experiment": "fading_square", "n_train": len(data.data), "batch_size": 100}
    samples = {}
    for preset, budget in (("spread_fading_square", args.budget_seconds), ("nf_spread_fading_square", args.budget_seconds / 2)):
        keras.utils.set_random_seed(0)
        model = zoo.get(preset)
        optimizer = zoo.training.spread_optimizer(4e-3, weight_decay=0.1, decay_every=250, decay_rate=0.7)
        done, seconds, loss = train(model, data.data, args.steps or 20000, budget, optimizer)
        drawn = _numpy(model.sample(64, noise_scale=0.0, seed=0))
        samples[preset] = drawn
        row = {"steps": done, "train_seconds": round(seconds, 1), "final_loss_bits_per_dim": round(loss, 4),
               "parameters": int(model.count_params()), "valid_square_fraction": _valid_square_fraction(
                   _numpy(model.sample(500, noise_scale=0.0, seed=1)))}
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


def run_mnist(latent_dim, args):
    import keras

    import zoo
    from zoo.evaluation import metrics

    images, _ = zoo.datasets.load("mnist", "train")
    start = time.time()
    vae = zoo.data.train_implicit_model(images, latent_dim, epochs=args.vae_epochs, batch_size=100, seed=0)
    vae_seconds = time.time() - start
    data = zoo.data.synthetic_mnist(20000, vae, seed=0)
    results = {"experiment": f"mnist{latent_dim}", "true_dimension": latent_dim, "vae_epochs": args.vae_epochs,
               "vae_seconds": round(vae_seconds, 1), "n_train": len(data.data), "batch_size": 100,
               "levina_bickel_mle_k20": metrics.levina_bickel_dimension(data.data[:5000], k=20)}
    keras.utils.set_random_seed(0)
    model = zoo.get("spread_mnist")
    steps = args.steps or 20000
    # Section 7.4 anneals 0.05 by 0.9 every 10k of 3000k steps after 2000k, floor 0.01; here compressed into the
    # budget: annealing starts after 1/4 of the expected steps and 16 decays (0.05 * 0.9^16 < 0.01) reach the floor
    # at 3/4, so the last quarter trains at the floor; the learning rate decays by 0.7 every 1/5.
    expected = args.expected_steps
    annealing = zoo.training.DataNoiseAnnealing(start_step=expected // 4, every_steps=max(1, expected // 32), factor=0.9, floor=0.01)
    optimizer = zoo.training.spread_optimizer(4e-3, weight_decay=0.1, decay_every=max(1, expected // 5), decay_rate=0.7)
    done, seconds, loss = train(model, data.data, steps, args.budget_seconds, optimizer, callbacks=[annealing])
    eigenvalues, k, gap = _spectrum_facts(model.prior)
    noise = [l for l in model._flatten_layers(recursive=True) if l.__class__.__name__ == "DataNoise"][0]
    results.update({"steps": done, "train_seconds": round(seconds, 1), "final_loss_bits_per_dim": round(loss, 4),
                    "final_data_noise": float(_numpy(noise.stddev)), "eigenvalues_top20": [float(e) for e in eigenvalues[:20]],
                    "intrinsic_dimension_rule": k, "gap_ratio": gap,
                    "largest_gap_in_top20": int(np.argmax(eigenvalues[:19] / eigenvalues[1:20])) + 1})
    samples = _numpy(model.sample(32, noise_scale=0.0, seed=0))
    fig = figure(1, 3, (16, 4.5))
    for index, (imgs, title) in enumerate(((data.data[:32], f"synthetic MNIST, dim(z) = {latent_dim}"),
                                            (samples, "spread model samples (s = 0)"))):
        pixels = (np.clip(imgs, 0, 1) * 255).round().astype(np.uint8)
        axis = fig.add_subplot(1, 3, index + 1)
        axis.imshow(zoo.evaluation.pictures.tile_images([list(pixels[r * 8:(r + 1) * 8]) for r in range(4)], scale=1), cmap="gray")
        axis.set_title(title)
        axis.axis("off")
    _spectrum_panel(fig.add_subplot(1, 3, 3), eigenvalues, model.prior.spread_std**2, k, f"dim(z) = {latent_dim}")
    results["figure"] = _save(fig, f"mnist{latent_dim}")
    return results


# ------------------------------------------------------------------ the doc
def _fmt(values, digits=3):
    return ", ".join(f"{v:.{digits}g}" for v in values)


def section(results, machine):
    lines = [SECTION_HEADING, "",
             "Spread-prior flows (`zoo/models/spread`: volume-preserving couplings + `layers.SpreadPrior`, "
             "sigma_Z = 0.01) against the same flows with non-volume-preserving couplings and a fixed N(0, I) "
             "prior (`nf_spread_*`). Intrinsic dimension K = the number of significant eigenvalues of AA^T "
             "by the rule of `layers.spread.significant_eigenvalue_count` (eigenvalues floored at sigma_Z^2, "
             "K = position of the largest ratio between consecutive eigenvalues if that ratio is >= 10, "
             "else D). Batch 100, step-decayed learning rate, weight decay 0.1 (`zoo.zoo.training.spread_optimizer`: "
             "decoupled AdamW for the vectors, coupled `AdamL2` for the images; see its docstring for why). Each model trains "
             "for a wall-clock budget on a shared CPU "
             f"({machine['cpu_model']}, {machine['usable_cpus']} usable cores, shared with other jobs; "
             f"TF {machine['tensorflow']}, Keras {machine['keras']}): minutes where the paper trains for "
             "10k-3000k iterations, so the numbers show what such a budget recovers.", "",
             "Wall time of each experiment (training both models, evaluation, figures): "
             + ", ".join(f"{name} {r['wall_seconds']:.0f} s" for name, r in results.items()) + ".", ""]
    if "sin" in results or "scurve" in results:
        lines += ["| data | true dim | model | steps | train s | K | top eigenvalues | gap ratio | median sample distance to the manifold | samples within 0.05 | other |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
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
                    f"| {name} | {r['true_dimension']} | `{preset}` | {row['steps']} | {row['train_seconds']} | "
                    f"{row.get('intrinsic_dimension', '-')} | {_fmt(row['eigenvalues']) if spread_row else '-'} | "
                    f"{gap} | "
                    f"{row['median_off_manifold_distance']:.4f} | {row['fraction_within_0.05']:.3f} | {other} |")
        lines.append("")
        for name in ("sin", "scurve"):
            if name in results:
                lines.append(f"![{name}]({os.path.relpath(os.path.join(REPO_ROOT, results[name]['figure']), os.path.join(REPO_ROOT, 'docs'))})")
        lines += ["", f"Command: `{SCRIPT} --experiments sin,scurve`. Sample distance: sin, |x2 - sin(2 x1)| of "
                  "2000 samples; S-curve, distance to the nearest of 200k noise-free S-curve points. Spread samples "
                  "are drawn from the degenerate prior (noise_scale s = 0).", ""]
    if "fading_square" in results:
        r = results["fading_square"]
        s, n = r["spread_fading_square"], r["nf_spread_fading_square"]
        lines += ["| 32x32 fading squares (true dim 1) | steps | train s | K | top eigenvalues | gap ratio | valid squares among 500 samples | Spearman(z_proj, grey level) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |",
                  f"| `spread_fading_square` | {s['steps']} | {s['train_seconds']} | {s['intrinsic_dimension']} | "
                  f"{_fmt(s['eigenvalues_top20'][:5])} | {s['gap_ratio']:.3g} | {s['valid_square_fraction']:.3f} | "
                  f"{s['spearman_projection_vs_grey_level']:.4f} |",
                  f"| `nf_spread_fading_square` | {n['steps']} | {n['train_seconds']} | - | - | - | {n['valid_square_fraction']:.3f} | - |",
                  "", f"![fading squares](figures/{os.path.basename(r['figure'])})", "",
                  f"Command: `{SCRIPT} --experiments fading_square`. Float images in [0, 1], no data noise "
                  "(as the paper). A sample is a valid square when every pixel is within 0.1 of a 6x6 centre "
                  "square of its mean grey level on black.", ""]
    mnist = [results[k] for k in ("mnist5", "mnist10") if k in results]
    if mnist:
        lines += ["| synthetic MNIST | VAE epochs | flow steps | train s | final data noise | K (rule) | recovered (K = dim z) | largest gap in top 20 | top 12 eigenvalues | Levina-Bickel MLE (k=20) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in mnist:
            lines.append(f"| dim(z) = {r['true_dimension']} | {r['vae_epochs']} | {r['steps']} | {r['train_seconds']} | "
                         f"{r['final_data_noise']:.3f} | {r['intrinsic_dimension_rule']} | "
                         f"{'yes' if r['intrinsic_dimension_rule'] == r['true_dimension'] else 'no'} | {r['largest_gap_in_top20']} | "
                         f"{_fmt(r['eigenvalues_top20'][:12])} | {r['levina_bickel_mle_k20']:.2f} |")
        lines.append("")
        for r in mnist:
            lines.append(f"![{r['experiment']}](figures/{os.path.basename(r['figure'])})")
        lines += ["", f"Commands: `{SCRIPT} --experiments mnist5` and `{SCRIPT} --experiments mnist10`. The implicit "
                  "model (appendix C.5.1 architecture) is fitted to MNIST for the listed epochs (the paper: 100), "
                  "then 20k samples x = g(z) are the training data; data noise 0.05 annealed by 0.9 to the floor "
                  "0.01 within the budget.", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", default="sin,scurve")
    parser.add_argument("--budget_seconds", type=float, default=None,
                        help="wall-clock training budget per model (default: 120 for vectors, 330 for images)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per model (default per experiment)")
    parser.add_argument("--expected_steps", type=int, default=3000, help="MNIST: steps the schedules are shaped for")
    parser.add_argument("--vae_epochs", type=int, default=3)
    parser.add_argument("--results_dir", default=os.path.join(REPO_ROOT, "runs", "intrinsic_dimension"))
    parser.add_argument("--doc", default=os.path.join(REPO_ROOT, "docs", "RESULTS.md"))
    args = parser.parse_args()
    os.makedirs(args.results_dir, exist_ok=True)
    for name in [n for n in args.experiments.split(",") if n and n != "none"]:  # "none": only rewrite the doc
        start = time.time()
        budget = args.budget_seconds
        args.budget_seconds = budget or (120.0 if name in ("sin", "scurve") else 330.0)
        if name in ("sin", "scurve"):
            result = run_vector(name, args)
        elif name == "fading_square":
            result = run_fading_square(args)
        elif name in ("mnist5", "mnist10"):
            result = run_mnist(int(name[5:]), args)
        else:
            raise SystemExit(f"unknown experiment {name!r}; choose from sin, scurve, fading_square, mnist5, mnist10")
        args.budget_seconds = budget
        result["wall_seconds"] = round(time.time() - start, 1)
        with open(os.path.join(args.results_dir, f"{name}.json"), "w") as f:
            json.dump(result, f, indent=1)
        print(json.dumps(result)[:2000])
    results = {}
    for name in ("sin", "scurve", "fading_square", "mnist5", "mnist10"):
        path = os.path.join(args.results_dir, f"{name}.json")
        if os.path.exists(path):
            with open(path) as f:
                results[name] = json.load(f)
    text = section(results, machine_description())
    write_section(args.doc, SECTION_HEADING, text)
    print(text)


if __name__ == "__main__":
    main()
