r"""DNF section 5.1: NF, M-flow, DNF and PIE on the thin spiral.

Trains the four models with the same outer architecture (``--num_couplings``
rational-quadratic spline couplings of ``--hidden_units``; M-flow and PIE and
DNF add an act-norm + element-wise spline inner flow on u, d = 1) for
``--epochs`` passes (``--recipe reference``, the default: the authors' released
training set-up, with M-flow's epochs split between its two sequential phases;
``--recipe adam``: constant-rate Adam, M-flow ``--epochs`` per phase), then

* evaluates each learned density on a 100 x 100 grid (DNF / PIE: the on-manifold
  estimate q(x) / q_sigma(x|x), zero where |v(x)| > sigma / 3; M-flow: eq. 16 with
  the full Gram determinant; NF: its 2-D density);
* compares the induced latent density pi_hat(u) = p(g(u)) sqrt(det G_g(u)) with the
  true pi(u) = Exp(scale 0.3) on u in (0, 2]: total variation (scale and shape),
  Wasserstein-1 and Kolmogorov-Smirnov distance of the normalized densities (shape), learned mass;
  with ``--seeds`` for each seed (training data, weights, noise), reported as mean and spread;
* times one density evaluation of a 500-point batch for M-flow (Jacobian + Gram
  determinant) and DNF, and checks Proposition 1 (the DNF's Gram-determinant
  estimate against the exact Gram determinant of its own generator);

and writes docs/figures/thin_spiral.png and the section
"## Thin spiral: NF, M-flow, DNF, PIE" of docs/RESULTS.md.

Usage:

    python benchmarks/thin_spiral.py [--epochs 10] [--num_train 10000] [--seeds 0 1 2]

The defaults take about 5 minutes on a shared 2-core CPU, far below the paper's
100 epochs; ``--epochs 100`` (the paper's) takes about 12 minutes per seed there.
Each seed's metrics are written to ``--json`` as soon as the seed finishes; a rerun
of the same protocol reuses the stored seeds once its first seed, always recomputed,
matches its stored metrics (so adding seeds costs only the new ones and the first).
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import (REPO_ROOT, add_json_argument, check_json_target, machine_description, read_json,  # noqa: E402
                               write_json, write_section)

SECTION_HEADING = "## Thin spiral: NF, M-flow, DNF, PIE"
# The arguments that decide a seed's metrics (the timing points and output paths do not).
PROTOCOL_KEYS = ("epochs", "num_train", "batch_size", "recipe", "learning_rate", "num_couplings", "hidden_units",
                 "winding")
COMPARED_METRICS = ("total_variation", "kolmogorov_smirnov", "wasserstein_1", "learned_mass")


def protocol_of(arguments):
    """The seed-deciding arguments of a run (``learning_rate`` only under ``recipe="adam"``)."""
    protocol = {key: arguments.get(key) for key in PROTOCOL_KEYS}
    if protocol["recipe"] != "adam":
        protocol.pop("learning_rate")
    return protocol


def stored_seeds(path, protocol):
    """{seed: metrics} of an earlier run with the same protocol stored at ``path`` (complete or not), else {}."""
    record = read_json(path, "thin_spiral") if path and os.path.exists(path) else None
    if record is None or protocol_of(record.get("arguments", {})) != protocol:
        return {}
    return {int(seed): metrics for seed, metrics in record.get("per_seed", {}).items()}


def same_metrics(first, second, rtol=1e-6):
    """Whether two seeds' metrics agree on every model's distances and mass (NaN equal to NaN)."""
    if set(first) != set(second):
        return False
    for label in first:
        if not isinstance(first[label], dict) or "total_variation" not in first[label]:
            continue
        a = np.array([first[label].get(key, np.nan) for key in COMPARED_METRICS], dtype=float)
        b = np.array([second[label].get(key, np.nan) for key in COMPARED_METRICS], dtype=float)
        if not np.allclose(a, b, rtol=rtol, atol=0.0, equal_nan=True):
            return False
    return True


def _verdict(per_seed, timing, epochs, recipe):
    """The one-paragraph verdict on the DNF paper's thin-spiral claims, from the measured numbers."""
    from scipy import stats

    def values(label, key):
        return np.array([m[label][key] for m in per_seed], dtype=float)

    nf_mass, dnf_mass = values("NF", "learned_mass"), values("DNF", "learned_mass")
    tv_dnf, tv_mflow = values("DNF", "total_variation"), values("M-flow", "total_variation")
    n = len(per_seed)
    wins = int(np.sum(tv_dnf < tv_mflow))
    # The NF's density is a 2-D one: its "mass" along the curve is in units of 1 / length (it grows as the fitted
    # band thins), so it measures how thin the band is, not a collapse into points; no number here tests that.
    nf_text = (f"the NF's collapse into single points is not tested by a number here: its 2-D density integrated "
               f"along the curve ({nf_mass.mean():.3g} on average) has units of 1 / length and only says how thin its "
               "band is; the figure shows whether it concentrates on points")
    if n > 1:
        differences = tv_mflow - tv_dnf
        standard_error = float(differences.std(ddof=1) / np.sqrt(n))
        t_value = float(differences.mean() / standard_error) if standard_error > 0 else float("inf")
        critical = float(stats.t.ppf(0.975, n - 1))
        clear = t_value > critical
        dnf_text = (f"the DNF's TV is below M-flow's in {wins} of {n} seeds, mean {tv_dnf.mean():.3f} vs "
                    f"{tv_mflow.mean():.3f}; paired over the seeds the difference is {differences.mean():.3f} ± "
                    f"{standard_error:.3f} (s.e.), t = {t_value:.2f} against the two-sided 95% critical value "
                    f"{critical:.2f} ({n - 1} degrees of freedom)")
        dnf_verdict = "reproduced" if clear else "not established over these seeds"
    else:
        clear = False
        dnf_text = f"one seed: DNF TV {tv_dnf[0]:.3f} vs M-flow {tv_mflow[0]:.3f}"
        dnf_verdict = "not measured (one seed)"
    # "M-flow fails to learn the density" has no threshold in the paper; the NF's TV is not comparable (its density
    # along the curve has units of 1 / length), so M-flow is judged against the DNF and the seed spread only.
    mflow_mass = values("M-flow", "learned_mass")
    mflow_text = (f"Whether M-flow \"fails\" has no threshold in the paper: here it learns a density on the curve of "
                  f"mass {mflow_mass.mean():.2g} of 1 with TV {tv_mflow.mean():.3f}, {tv_mflow.mean() / tv_dnf.mean():.1f} "
                  f"times the DNF's {tv_dnf.mean():.3f}"
                  + ("; that difference holds over the seeds (above)" if clear else
                     "; over these seeds that difference is not established")
                  + ", so what is measured is the ranking, not an absolute failure.")
    recipe_text = ("the authors' released training set-up (AdamW, cosine annealing, clipping, 90% of the points, "
                   f"M-flow {epochs // 2} + {epochs - epochs // 2} epochs)" if recipe == "reference" else
                   "Adam at a constant rate on all points (M-flow: that many epochs in each phase), not the authors' "
                   "set-up")
    epochs_text = (f"This is with the paper's {epochs} epochs, sigma^2 and lambda and {recipe_text}, but not the "
                   "released architecture (9 x [LU linear, spline coupling with a 100-unit residual network], affine "
                   "inner flow; ours: spline couplings with 64 x 2 MLPs, act-norm and reversal, spline inner flow); "
                   "the cause of the gap to the paper is not isolated." if epochs == 100 else
                   f"This is {epochs} epochs (the paper: 100) with {recipe_text}.")
    overall = ("reproduced qualitatively (the DNF-over-M-flow claim holds over the seeds; the NF's collapse is not "
               "tested by a number and the timing ratio is far below the paper's, for the reasons below)" if clear else
               "not reproduced (the DNF-over-M-flow claim is not established over these seeds)")
    return (f"Verdict (DNF paper, section 5.1 and figure 2: the NF's density collapses, M-flow fails to learn the "
            f"density and the DNF learns it; evaluating 500 points costs M-flow 188 s and the DNF 1 s): {overall}. "
            f"In detail: {nf_text}. "
            f"The DNF-over-M-flow claim is {dnf_verdict}: {dnf_text}. {mflow_text} How close each is to pi(u): TV DNF "
            f"{tv_dnf.mean():.3f}, M-flow {tv_mflow.mean():.3f} (0 is perfect); the DNF's learned mass is "
            f"{dnf_mass.mean():.2g} ± {dnf_mass.std(ddof=1) if n > 1 else 0:.2g} of 1 at the paper's cut "
            "|v| <= sigma / 3"
            + (f" ({np.mean([m['DNF']['reference_cut']['learned_mass'] for m in per_seed]):.2g} at the released "
               "evaluation's sigma / sqrt(3))" if "reference_cut" in per_seed[0]["DNF"] else "")
            + f", and TV is at least half the missing mass ({0.5 * abs(1 - dnf_mass.mean()):.3f} here). {epochs_text} "
            f"The timing claim is not reproduced at d = 1: the ratio here is {timing['ratio']:.1f}x against the "
            "paper's ~190x; by our reading of the reference code (not timed here) that figure measures its "
            "implementation's Jacobian (one backward pass per output) rather than the cost the Gram determinant "
            "implies; the next section measures how the ratio grows with d.")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--num_train", type=int, default=10000)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--recipe", default="reference", choices=["reference", "adam"],
                        help="reference: the authors' released training set-up (AdamW 3e-4, weight decay 1e-4, "
                             "cosine, clip 5, 90%% of the points, M-flow epochs / 2 per phase); adam: Adam at "
                             "--learning_rate on all points, M-flow --epochs per phase")
    parser.add_argument("--learning_rate", type=float, default=1e-3, help="--recipe adam only")
    parser.add_argument("--num_couplings", type=int, default=9)
    parser.add_argument("--hidden_units", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="train and measure every model once per seed (figure and timing: the first)")
    parser.add_argument("--winding", default="reference", choices=["reference", "paper"],
                        help="thin-spiral winding: the authors' simulator (alpha = 3 pi, default) or the paper's text "
                             "(alpha = 4 pi / 3)")
    parser.add_argument("--timing_points", type=int, default=500)
    parser.add_argument("--figure", default=os.path.join(REPO_ROOT, "docs", "figures", "thin_spiral.png"))
    parser.add_argument("--doc", default=os.path.join(REPO_ROOT, "docs", "RESULTS.md"))
    add_json_argument(parser, "thin_spiral")
    args = parser.parse_args()

    if args.json:
        check_json_target(args.json, benchmark="thin_spiral")  # before the hours of training, not after
    import zoo
    from zoo import dnf

    start = time.perf_counter()
    seeds = args.seeds or [args.seed]
    # A seed's metrics are stored as soon as it finishes, so a run that stops (or fails) after hours keeps them: a
    # rerun with the same protocol reuses the stored seeds, except the first, which is always recomputed (the figure,
    # the timing and Proposition 1 need its models) and must then match its stored metrics, else every seed reruns.
    earlier = stored_seeds(args.json, protocol_of(vars(args))) if args.json else {}
    if earlier and seeds[0] not in earlier:
        print(f"{args.json} holds no stored seed {seeds[0]} to check the others against: every seed runs", flush=True)
        earlier = {}
    per_seed, reused, first_check = [], [], None
    for seed in seeds:
        if seed != seeds[0] and seed in earlier:
            per_seed.append(earlier[seed])
            reused.append(seed)
            print(f"seed {seed}: metrics reused from {args.json} (same protocol)", flush=True)
            continue
        run = zoo.experiments.thin_spiral.run_thin_spiral(
            num_train=args.num_train, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
            num_couplings=args.num_couplings, hidden_units=args.hidden_units, timing_points=args.timing_points,
            seed=seed, winding=args.winding, recipe=args.recipe)
        per_seed.append(run["metrics"])
        if seed == seeds[0]:
            results = run  # the figure, the timing and Proposition 1: the first seed
            if seed in earlier:
                first_check = same_metrics(run["metrics"], earlier[seed])
                if not first_check:
                    print(f"seed {seed} differs from its stored metrics: no stored seed is reused", flush=True)
                    earlier = {}
        if args.json:
            kept = {**{s: m for s, m in earlier.items() if s in seeds}, **dict(zip(seeds, per_seed))}
            write_json(args.json, {"arguments": vars(args), "per_seed": kept, "reused_seeds": reused,
                                   "complete": False}, benchmark="thin_spiral")
    # The cost of the Gram determinant grows with d: the same timing on 8x8 digits (D = 64, d = 8) with a
    # small affine GLOW (untrained; act-norm initialized on data), as M-flow and as DNF.
    from zoo.data.datasets import load_digits_images

    digits = load_digits_images()[0][: args.timing_points]
    image_models = [dnf.make_image_dnf((8, 8, 1), 8, mode=mode, num_levels=2, steps_per_level=2, hidden_channels=32,
                                       n_bits=5, latent_flow_couplings=2, latent_flow_hidden_units=64,
                                       coupling="affine", name=mode) for mode in ("mflow", "dnf")]
    for model in image_models:
        model.initialize(digits)
    digits_timing = zoo.experiments.thin_spiral.density_timing(*image_models, digits)
    os.makedirs(os.path.dirname(args.figure), exist_ok=True)
    zoo.experiments.thin_spiral.plot_thin_spiral(results, args.figure)
    wall = time.perf_counter() - start
    metrics, timing = results["metrics"], results["timing"]
    if args.json:
        write_json(args.json, {"arguments": vars(args), "metrics": metrics, "per_seed": dict(zip(seeds, per_seed)),
                               "reused_seeds": reused, "first_seed_matched_stored": first_check,
                               "timing": timing, "digits_timing": digits_timing, "wall_seconds": wall,
                               "machine": machine_description(), "complete": True}, benchmark="thin_spiral")

    command = "python benchmarks/thin_spiral.py " + " ".join(
        f"--{k} {getattr(args, k)}" for k in ("epochs", "num_train", "batch_size", "recipe", "num_couplings",
                                              "hidden_units", "timing_points", "winding")
        + (("learning_rate",) if args.recipe == "adam" else ()))
    command += f" --seeds {' '.join(map(str, seeds))}" if args.seeds else f" --seed {args.seed}"
    machine = machine_description()
    winding_text = ("alpha = 3 pi, the authors' released simulator (chrvt/denoising-normalizing-flow, "
                    "experiments/datasets/thin_spiral.py), with which the paper's figure 2 was made; 99% of the "
                    "points lie within 1.76 turns" if args.winding == "reference" else
                    "alpha = 4 pi / 3 as printed in the paper (the released simulator winds 3 pi); 99% of the points "
                    "lie within 0.78 turns")
    rows, seed_rows = [], []
    for label in ("NF", "M-flow", "DNF", "PIE"):
        def cell(key, fmt, part=None):  # part: a nested dict of the metrics, e.g. "reference_cut"
            found = [m[label] if part is None else m[label].get(part, {}) for m in per_seed]
            values = np.array([f[key] for f in found if key in f], dtype=float)
            if not len(values):
                return "-"
            if np.isnan(values).any():  # W1 / KS of a density with no mass on the grid
                return f"n/a (no mass in {int(np.isnan(values).sum())} of {len(values)} seeds)"
            if len(values) == 1:
                return format(values[0], fmt)
            return f"{format(values.mean(), fmt)} ± {format(values.std(ddof=1), fmt)}"
        rows.append(f"| {label} | {cell('total_variation', '.3f')} | {cell('kolmogorov_smirnov', '.3f')} | "
                    f"{cell('wasserstein_1', '.3f')} | {cell('learned_mass', '.3g')} | "
                    f"{cell('total_variation', '.3f', 'reference_cut')} | "
                    f"{cell('learned_mass', '.3g', 'reference_cut')} | "
                    f"{cell('reconstruction_mse', '.2e')} | {cell('train_seconds', '.0f')} |")
        seed_rows.append(f"| {label} | " + " | ".join(
            f"{m[label]['total_variation']:.3f} / {m[label]['kolmogorov_smirnov']:.3f}" for m in per_seed) + " |")
    spread = ("mean ± standard deviation over the seeds" if len(seeds) > 1 else "one seed")
    per_seed_table = "" if len(seeds) == 1 else (
        "\nTV / KS per seed (" + ", ".join(f"seed {seed}" for seed in seeds) + "):\n\n| model | "
        + " | ".join(f"seed {seed}" for seed in seeds) + " |\n| --- |" + " --- |" * len(seeds) + "\n"
        + "\n".join(seed_rows) + "\n")
    ranking = ""
    if len(seeds) > 1:
        tv = {label: np.array([m[label]["total_variation"] for m in per_seed]) for label in ("M-flow", "DNF", "PIE")}
        wins = int(np.sum(tv["DNF"] < tv["M-flow"]))
        ranking = (f"\nDNF vs M-flow, seed by seed: the DNF's TV is lower in {wins} of {len(seeds)} seeds (mean "
                   f"{tv['DNF'].mean():.3f} vs {tv['M-flow'].mean():.3f}); PIE's mean TV {tv['PIE'].mean():.3f}.\n")
    verdict = _verdict(per_seed, timing, args.epochs, args.recipe)
    reused_train = sum(m[label]["train_seconds"] for m, seed in zip(per_seed, seeds) if seed in reused
                       for label in ("NF", "M-flow", "DNF", "PIE"))
    reuse_text = "" if not reused else (
        f" Seeds {', '.join(map(str, reused))} were measured by an earlier invocation of the same command whose "
        "per-seed metrics were stored (benchmarks/results/thin_spiral/thin_spiral.json) and are reused; the first "
        f"seed, recomputed here, matched its stored metrics (relative 1e-6), and the wall time is this invocation's; "
        "a run without stored seeds also trains the reused ones, whose models' training took "
        f"{reused_train:.0f} s when they were measured.")
    paper_epochs = "the paper's 100" if args.epochs == 100 else "the paper: 100"
    if args.recipe == "reference":
        training_text = (f"{args.epochs} epochs ({paper_epochs}) "
                         f"over the first 90% of {args.num_train} points (the reference holds 10% out for validation; "
                         "its best-epoch restore keeps `state_dict()` uncopied, i.e. the live weights, so it ends with "
                         f"the last weights, as here), batch {args.batch_size}, as the authors' released configs and "
                         "trainer: AdamW (lr 3e-4, weight decay 1e-4), cosine annealing to 0 over each training call "
                         "(DNF: restarted every 50 epochs; per step here, per epoch there), gradient norm clipped at 5 "
                         "on the reference's loss scale (the clip norm divided by how many times their loss is ours: "
                         "DNF 2 ln 2, M-flow 1000 ln 2 in the manifold phase with its MSE weight 1000, 2 in the "
                         f"density phase). M-flow: sequential, {args.epochs // 2} epochs manifold phase, then "
                         f"{args.epochs - args.epochs // 2} epochs density phase, each with a fresh optimizer")
    else:
        training_text = (f"{args.epochs} epochs over {args.num_train} points, batch {args.batch_size}, Adam "
                         f"{args.learning_rate} (constant; not the authors' set-up). M-flow: sequential "
                         f"({args.epochs} epochs manifold phase, then {args.epochs} epochs density phase)")
    section = f"""{SECTION_HEADING}

Command: `{command}` (total wall time {wall:.0f} s; machine: {machine['cpu_model']}, {machine['usable_cpus']} usable
CPUs shared with other jobs, TensorFlow {machine['tensorflow']}, Keras {machine['keras']}).
{training_text}. Every model has the same outer flow: {args.num_couplings} rational-quadratic spline
couplings (MLP {args.hidden_units} units x 2, 5 bins on [-3, 3]) with act-norm and reversal; M-flow, DNF and PIE
add an act-norm + element-wise spline inner flow on u (d = 1). DNF: sigma^2 = 0.01, lambda = 1. PIE: sigma =
lambda = 0, p_v = N(0, 0.01^2) (not in the paper's figure, which shows a PAE and a VAE instead). The reconstruction
term of eq. 14 is the sum over the D = 2 coordinates, as printed (the released code takes their mean, i.e. lambda
= 0.5 in these units). Data: zoo.manifolds.thin_spiral(winding="{args.winding}"): u ~ Exp(scale 0.3), angle
alpha sqrt(u) with {winding_text}.

Induced latent density pi_hat(u) = p(g(u)) sqrt(det G_g(u)) against the true pi(u) on u in (0, 2] (400 points):
total variation 0.5 int |pi_hat - pi| du (0 is perfect; it also counts a wrong scale), Wasserstein-1 between the
two densities each normalized on the grid (shape only), the Kolmogorov-Smirnov distance (largest gap of
their cumulative distributions, shape only), and the learned mass int pi_hat du (1 is right); for DNF and PIE,
whose on-manifold density is set to 0 where |v(x)| > sigma / 3 (the paper's text), TV and mass also at the released
evaluation code's cut sigma / sqrt(3) ("wider cut" columns). For the NF, a 2-D density, pi_hat is its density
along the curve times the speed: units of 1 / length, not comparable with 1.
W1 ignores the scale: a model whose on-manifold density is off by a large factor (the NF's mass column) can
still have a small W1. Reconstruction: mean ||x - f^-1(Pad(Proj_u(f(x))))||^2 on 1000 test points.

Seeds: {', '.join(map(str, seeds))} (each seeds the training and test points, the initial weights and the noise);
the table shows the {spread}.{reuse_text}

| model | TV(pi_hat, pi) | KS (normalized) | W1 (normalized) | mass of pi_hat | TV, wider cut | mass, wider cut | reconstruction | train s |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}
{per_seed_table}{ranking}
{verdict}

Density evaluation of a {timing['points']}-point batch (both as `tf.function`s, median of 3 after a tracing call,
same CPU): M-flow with the full Gram determinant (forward-mode Jacobian of g: d Jacobian-vector products, then a
Cholesky of J^T J) vs DNF (one pass of f and h, no Jacobian: the on-manifold density in the outer flow's input
space, `space="flow_input"`; on the spiral, which has no preprocessing, that is the data-space density itself.
On the digits the data-space density adds the tangential part of the preprocessing's Jacobian, which costs d
Jacobian-vector products like M-flow's Gram determinant).

| data | D | d | M-flow s | DNF s | ratio | paper (thin spiral, GPU) |
| --- | --- | --- | --- | --- | --- | --- |
| thin spiral (trained models above, seed {seeds[0]}) | 2 | 1 | {timing['mflow_seconds']:.4f} | {timing['dnf_seconds']:.4f} | {timing['ratio']:.1f}x | 188 s vs 1 s (~190x) |
| 8x8 digits (affine GLOW 2 levels x 2 steps x 32, 2 inner couplings; untrained) | 64 | 8 | {digits_timing['mflow_seconds']:.4f} | {digits_timing['dnf_seconds']:.4f} | {digits_timing['ratio']:.1f}x | - |

The paper reports 188 s vs 1 s per 500 points on a GPU (a ratio of ~190). Here, with D = 2 and d = 1 the
Jacobian is a single forward-mode product, so the full Gram determinant costs about one extra pass of the
inverse flow; the gap opens with d (one product per latent dimension, plus O(D d^2 + d^3) for the Gram
matrix and its Cholesky), as the digits row shows.

Proposition 1 on the trained DNF (seed {seeds[0]}): mean |log det G_g estimate - exact log det G_g of its own generator| over 200
test points projected onto the learned manifold (both at the same points) = {metrics['DNF']['prop1_log_gram_mean_abs_error']:.3f} (the estimate -2 (log|det df/dx| + log|det dh/du|)
needs no Jacobian; it is exact only when the DNF loss reaches its optimum).

Figure (docs/figures/thin_spiral.png, seed {seeds[0]}): top, the data and each model's density on the 100 x 100 grid (NF: its 2-D
density; M-flow: eq. 16 at the projection u(x) of every grid point, so it is defined off the manifold too; DNF
and PIE: the on-manifold estimate, zero where |v(x)| > sigma / 3); bottom, the true pi(u) and each model's
induced latent density (clipped at 1.5 max pi).

![thin spiral](figures/thin_spiral.png)
"""
    write_section(args.doc, SECTION_HEADING, section)
    print(section)


if __name__ == "__main__":
    main()
