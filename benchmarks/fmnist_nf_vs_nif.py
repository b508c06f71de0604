r"""Quality benchmark: a small NF and a small NIF on Fashion-MNIST, evaluated with zoo.evaluate.

Trains ``nf_fmnist`` and ``nif_fmnist_64`` with a reduced GLOW (``--steps_per_level``,
``--hidden_channels``) for ``--epochs`` on the first ``--train_images`` training images,
then runs ``zoo.evaluate`` (bits/dim at the presets' n_bits = 3, reconstruction error,
FID with the ported 2015 Inception, swept over the noise scale for the NIF) on
``--test_images`` test images with ``--samples`` samples, and writes the section
"## Fashion-MNIST: small NF vs NIF" of docs/RESULTS.md plus the pictures under --out.

Usage:

    python benchmarks/fmnist_nf_vs_nif.py [--epochs 2] [--out runs/fmnist_nf_vs_nif]

These are minutes-long CPU runs, far from the paper's training budget: compare the two
models with each other, not with published numbers.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import REPO_ROOT, machine_description, write_section  # noqa: E402

SECTION_HEADING = "## Fashion-MNIST: small NF vs NIF"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train_images", type=int, default=6000)
    parser.add_argument("--test_images", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--steps_per_level", type=int, default=4)
    parser.add_argument("--hidden_channels", type=int, default=32)
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "runs", "fmnist_nf_vs_nif"))
    parser.add_argument("--doc", default=os.path.join(REPO_ROOT, "docs", "RESULTS.md"))
    args = parser.parse_args()

    import keras

    import zoo
    import zoo

    images, _ = zoo.datasets.load("fmnist", "train")
    images = images[: args.train_images]
    rows = {}
    for name in ("nf_fmnist", "nif_fmnist_64"):
        keras.utils.set_random_seed(0)
        model = zoo.get(name, steps_per_level=args.steps_per_level, hidden_channels=args.hidden_channels)
        model.compile(optimizer=keras.optimizers.Adam(1e-3, global_clipnorm=5.0))
        start = time.time()
        model.fit(images, batch_size=64, epochs=args.epochs, verbose=2)
        train_seconds = time.time() - start
        report = zoo.evaluation.evaluate(model, "fmnist", os.path.join(args.out, name), metrics=("bpd", "recon", "fid"),
                                   max_examples=args.test_images, num_samples=args.samples)
        rows[name] = (report, train_seconds, model.count_params())

    machine = machine_description()
    first = next(iter(rows.values()))[0]["metrics"]  # the counts every row used (the same for both models)
    command = "python benchmarks/fmnist_nf_vs_nif.py" + "".join(
        f" --{k} {getattr(args, k)}" for k in ("epochs", "train_images", "test_images", "samples", "steps_per_level",
                                              "hidden_channels") if getattr(args, k) != parser.get_default(k))
    lines = [
        SECTION_HEADING, "",
        f"Command: `{command}`. Each model: the preset with a reduced GLOW ({args.steps_per_level} steps x "
        f"{args.hidden_channels} channels per level, paper: 16 x 256), Adam 1e-3 with global-norm clip 5, batch 64, "
        f"{args.epochs} epochs on the first {args.train_images} training images, seed 0. Bits/dim and "
        f"reconstruction error on the first {first['bits_per_dim']['examples']} test images; FID between the first "
        f"{first['fid']['real_images']} test images and {first['fid']['samples']} samples (temperature 1, sample "
        f"seed {first['fid']['seed']}) with the "
        "ported 2015 Inception (docs/FID_PORT.md); FID is biased upwards at small sample counts, so compare rows "
        f"only with each other. Machine: {machine['cpu_model']}, {machine['usable_cpus']} CPUs, no GPU. "
        f"Date: {time.strftime('%Y-%m-%d')}.", "",
        "| model | parameters | train s | bits/dim (n_bits 3) | recon. error (sq. L2 / image) | FID s=0 | FID s=0.25 | FID s=0.5 | FID s=1 (NF: its samples) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, (report, seconds, params) in rows.items():
        m = report["metrics"]
        sweep = {r["noise_scale"]: r["value"] for r in m["fid"]["sweep"]}
        cells = [f"{sweep[s]:.1f}" if s in sweep else "n/a (no noise)" for s in (0.0, 0.25, 0.5)]
        lines.append(f"| {name} | {params:,} | {seconds:.0f} | {m['bits_per_dim']['value']:.3f} | "
                     f"{m['reconstruction_error']['value']:.0f} | " + " | ".join(cells) + f" | {m['fid']['value']:.1f} |")
    lines += ["", "Reconstruction error: `decode(encode(x))` on the learned manifold against x quantized to 3 bits, "
              "in 8-bit pixel units (the NF is bijective: 0). Pictures (sample grids with temperature rows and "
              f"noise-scale columns, reconstructions, interpolation, UMAP, FID vs s) are written under `{os.path.relpath(args.out, REPO_ROOT)}/`.", ""]
    section = "\n".join(lines)
    if not os.path.exists(args.doc):
        with open(args.doc, "w") as f:
            f.write("# Results\n\nNumbers measured by the project's own scripts; each section names its command.\n")
    write_section(args.doc, SECTION_HEADING, section)
    print(section)


if __name__ == "__main__":
    main()
