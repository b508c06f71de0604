"""Training throughput of this project's GLOW against ``tfp.bijectors.Glow``.

Both models are built at the same depth (levels / blocks, steps per level),
the same coupling-network width and trained at the same batch size on the
same random uint8 images, in the same process, on the same TensorFlow
runtime. The project's model is trained the real way (``compile`` +
``fit``); TFP's Glow is trained with a ``tf.function`` train step (the usual
way to train a TFP distribution). Rounds alternate (ours, TFP, ours, TFP,
...) and the median images/second of each model is reported, with the ratio
project / TFP.

The result is printed and written to the section
"## Training throughput: GLOW vs tfp.bijectors.Glow" of ``docs/BENCHMARKS.md``
(that section is replaced on every run; other sections are kept).

Usage (from the repository root)::

    python benchmarks/train_throughput.py                    # default config
    python benchmarks/train_throughput.py --levels 4 --steps_per_level 16 \\
        --hidden_channels 256 --batch_size 64 --steps 10     # a bigger one
    python benchmarks/train_throughput.py --no_write         # print only

In the same rounds the project's model also trains under Keras's
``mixed_bfloat16`` policy (``--no_bf16`` skips it); its images/second are
put against a bfloat16 matmul peak of the same run and against the float32
one (issue 17, part 6: utilization in fp32 and, where supported, bf16).

Flags ``--jit_compile`` (``auto``: each library's default, which on a
CPU-only machine is no XLA for both; ``true``/``false``: force XLA on/off for
both) and ``--steps_per_execution`` (project model only) let one explore the
compiler settings.
"""

import argparse
import datetime
import functools
import math
import os
import shlex
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402
import tf_keras  # noqa: E402

from benchmarks import common  # noqa: E402
import layers as flow_layers  # noqa: E402
import zoo  # noqa: E402
from zoo.training.data import epoch_dataset  # noqa: E402

tfb = tfp.bijectors
tfd = tfp.distributions

SECTION_HEADING = "## Training throughput: GLOW vs tfp.bijectors.Glow"
DEFAULT_DOC = os.path.join(REPO_ROOT, "docs", "BENCHMARKS.md")
LOGIT_ALPHA = 0.05  # the project's LogitTransform default, used on both sides
RATIO_TARGET = 1.5  # project / TFP images per second
MFU_TARGET = 0.5  # model FLOPs per second over the fp32 matmul peak of the same run


# --------------------------------------------------------------------------- flags
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--height", type=int, default=32)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--levels", type=int, default=3, help="GLOW levels = TFP num_glow_blocks")
    p.add_argument("--steps_per_level", type=int, default=4, help="= TFP num_steps_per_block")
    p.add_argument("--hidden_channels", type=int, default=128, help="coupling network width")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per model (tracing, init)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=7, help="alternating timed rounds per model")
    p.add_argument("--jit_compile", choices=("auto", "true", "false"), default="auto",
                   help="XLA for both models: auto = each library's default (off on CPU-only machines)")
    p.add_argument("--steps_per_execution", type=int, default=1, help="Keras compile() option (ours only)")
    p.add_argument("--phase_rounds", type=int, default=5, help="interleaved rounds of step_phases")
    p.add_argument("--learning_rate", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--doc", default=DEFAULT_DOC, help="Markdown file whose section is written")
    p.add_argument("--no_write", action="store_true", help="print only; do not touch the doc")
    p.add_argument("--inter_op_threads", type=int, default=0,
                   help="TensorFlow's inter-op thread pool size (independent ops run at once); 0: TensorFlow's default")
    p.add_argument("--intra_op_threads", type=int, default=0,
                   help="threads one op may use; 0: TensorFlow's default")
    p.add_argument("--no_bf16", action="store_true",
                   help="skip the project's model under Keras's mixed_bfloat16 policy (timed in the same rounds, "
                        "its utilization against a bfloat16 matmul peak of the same run)")
    return p.parse_args(argv)


# ------------------------------------------------------------------------ machine
def machine_description():
    """The shared machine description plus the versions and thread settings this benchmark depends on."""
    machine = common.machine_description()
    machine.update({
        "tf_keras": tf_keras.__version__,
        "tfp": tfp.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    })
    return machine


class CpuContention:
    """CPU time used by *other* processes while timing (in cores), from /proc.

    The benchmark machine may be shared; this tells the reader how much of it
    was busy with something else while the timed rounds ran.
    """

    @staticmethod
    def _busy_seconds():
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except OSError:
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    def __enter__(self):
        self.busy0, self.own0, self.wall0 = self._busy_seconds(), sum(os.times()[:2]), time.perf_counter()
        return self

    def __exit__(self, *exc):
        busy1, own1 = self._busy_seconds(), sum(os.times()[:2])
        self.wall = time.perf_counter() - self.wall0
        self.own_cores = (own1 - self.own0) / self.wall
        self.other_cores = None if self.busy0 is None else max(0.0, (busy1 - self.busy0) - (own1 - self.own0)) / self.wall
        return False


def process_cpu_seconds():
    """User + system CPU seconds used by this process so far (all threads)."""
    return sum(os.times()[:2])


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


# --------------------------------------------------------------------- the models
def n_params(variables):
    return int(sum(int(np.prod(v.shape)) for v in variables))


def build_ours(args, policy="float32"):
    """The project's GLOW, compiled; built under the Keras dtype ``policy`` (the global policy is restored after)."""
    previous = keras.config.dtype_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = zoo.make_glow(
            image_shape=(args.height, args.width, args.channels),
            num_levels=args.levels,
            steps_per_level=args.steps_per_level,
            hidden_channels=args.hidden_channels,
            n_bits=8,
            seed=args.seed,
        )
        jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
        model.compile(
            optimizer=keras.optimizers.Adam(args.learning_rate),
            jit_compile=jit,
            steps_per_execution=args.steps_per_execution,
        )
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model


def ours_param_counts(model):
    trainable = n_params(model.trainable_variables)
    # The LU 1x1 convolutions store full C x C `lower` and `upper` matrices of
    # which only the strict triangles are used (masked), plus C log-scales:
    # C^2 free parameters out of 2 C^2 + C stored, like TFP's packed
    # `lower_upper` (C^2). Count the free ones too, to compare like with like.
    masked = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, flow_layers.InvertibleConv1x1) and layer.lu_decomposed:
            masked += layer.channels**2 + layer.channels  # stored minus free
    return {"stored": trainable, "free": trainable - masked, "variables": len(model.trainable_variables)}


def _identity_exit(input_shape, output_chan):
    """TFP exit 'network' that returns an Identity bijector: channels leave untouched."""
    del input_shape, output_chan
    return lambda inputs: tfb.Identity()


def build_tfp(args):
    h, w, c = args.height, args.width, args.channels
    glow = tfb.Glow(
        output_shape=(h, w, c),
        num_glow_blocks=args.levels,
        num_steps_per_block=args.steps_per_level,
        coupling_bijector_fn=functools.partial(
            tfb.GlowDefaultNetwork, num_hidden=args.hidden_channels, kernel_shape=3
        ),
        exit_bijector_fn=_identity_exit,
        # Fractions of the *remaining* channels that exit after each block
        # (image side first): half at every level but the last, like ours.
        grab_after_block=tuple([0.5] * (args.levels - 1) + [0.0]),
        seed=args.seed,
    )
    dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0.0, 1.0), [h * w * c]), glow)
    return glow, dist


def tfp_preprocess(pixels, num_dims):
    """Same preprocessing as the project: uniform dequantization + logit(0.05).

    Returns the logit-space tensor and the per-example log-det of the map from
    dequantized levels k + u to it (so log_prob is in the same units as ours).
    """
    k = tf.cast(pixels, tf.float32)
    y = (k + tf.random.uniform(tf.shape(k), dtype=tf.float32)) / 256.0
    p = LOGIT_ALPHA + (1.0 - 2.0 * LOGIT_ALPHA) * y
    z = tf.math.log(p) - tf.math.log1p(-p)
    log_det = tf.reduce_sum(math.log1p(-2.0 * LOGIT_ALPHA) - tf.math.log(p) - tf.math.log1p(-p), axis=[1, 2, 3])
    return z, log_det - num_dims * 8 * math.log(2.0)


def make_tfp_train_step(glow, dist, args):
    num_dims = args.height * args.width * args.channels
    optimizer = tf_keras.optimizers.Adam(args.learning_rate)
    variables = glow.trainable_variables
    jit = {"auto": None, "true": True, "false": False}[args.jit_compile]

    @tf.function(jit_compile=jit)
    def train_step(pixels):
        with tf.GradientTape() as tape:
            z, log_det = tfp_preprocess(pixels, num_dims)
            log_prob = dist.log_prob(z) + log_det
            loss = tf.reduce_mean(-log_prob) / (num_dims * math.log(2.0))  # bits/dim
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    return train_step


# ---------------------------------------------------------------------- timing
class _EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


def time_ours(model, make_input, batch_size=None):
    """One fit() epoch over ``make_input()`` (built inside the timed call, as each epoch of ``zoo.train`` builds
    its input); returns (fit wall seconds, epoch seconds, loss)."""
    timer = _EpochTimer()
    start = time.perf_counter()
    history = model.fit(make_input(), batch_size=batch_size, epochs=1, verbose=0, callbacks=[timer])
    wall = time.perf_counter() - start
    return wall, timer.seconds, float(history.history["loss"][-1])


def time_tfp(train_step, batches):
    start = time.perf_counter()
    loss = None
    for batch in batches:
        loss = train_step(batch)
    loss = float(loss.numpy())  # wait for the last step
    return time.perf_counter() - start, loss


# ----------------------------------------------------------------------- doc
def render_section(result):
    a, m, r = result["args"], result["machine"], result
    ratio = r["ratio"]
    verdict = "met" if ratio >= RATIO_TARGET else "NOT met"
    mfu_verdict = "met" if r["mfu_ours"] >= MFU_TARGET else "NOT met"
    other = "unknown" if r["other_cores"] is None else f"{r['other_cores']:.2f}"
    fmt = lambda values: ", ".join(f"{v:.0f}" for v in values)  # noqa: E731
    per_round = ", ".join(f"{o / t:.2f}" for o, t in zip(r["ours_rounds"], r["tfp_rounds"]))
    jit_text = (
        "each library's default, which is no XLA on a CPU-only machine"
        if a.jit_compile == "auto" else f"forced {a.jit_compile} for both"
    )
    lines = [
        SECTION_HEADING,
        "",
        "Training throughput (images/second, higher is better) of this project's GLOW "
        "(`zoo.make_glow`, trained with `compile` + `fit`) against TensorFlow Probability's "
        "`tfp.bijectors.Glow` (trained with a `tf.function` step: `GradientTape` + `tf_keras` Adam) "
        "at the same depth, width and batch, both measured in the same process run "
        "by `benchmarks/train_throughput.py`.",
        "",
        f"**Targets** (issue 17, part 6): this project at least {RATIO_TARGET:g}x as fast as TFP's Glow at "
        f"equal configuration, and at least {100 * MFU_TARGET:.0f}% of the fp32 matmul peak measured in the same "
        f"run. **Result: ratio {ratio:.2f} (target {verdict}); utilization {100 * r['mfu_ours']:.1f}% "
        f"(target {mfu_verdict}).**",
        "",
        "| | this project (`zoo.make_glow`) | `tfp.bijectors.Glow` | ratio project / TFP |",
        "|---|---|---|---|",
        f"| **images/s, median of {a.rounds} rounds** | **{r['ours_median']:.1f}** | **{r['tfp_median']:.1f}** | "
        f"**{ratio:.2f}** |",
        f"| images/s per round | {fmt(r['ours_rounds'])} | {fmt(r['tfp_rounds'])} | {per_round} |",
        f"| images/s, best round | {max(r['ours_rounds']):.1f} | {max(r['tfp_rounds']):.1f} | "
        f"{r['ratio_best']:.2f} |",
        f"| images per CPU-second of the process, median | {r['ours_cpu_median']:.1f} | "
        f"{r['tfp_cpu_median']:.1f} | {r['ratio_cpu']:.2f} |",
        f"| trainable parameters | {r['ours_params']['stored']:,} stored, {r['ours_params']['free']:,} free "
        f"({r['ours_params']['variables']} variables) | {r['tfp_params']['stored']:,} "
        f"({r['tfp_params']['variables']} variables) | |",
        f"| final loss, bits/dim (random images) | {r['ours_loss']:.3f} | {r['tfp_loss']:.3f} | |",
        f"| FLOP utilization vs the fp32 matmul peak of this run ({r['matmul_peak'] / 1e9:.0f} GFLOP/s, 1024^2, the "
        f"largest of {len(r.get('matmul_peaks', [0, 0]))} measurements spread through the run, which ranged "
        f"{min(r.get('matmul_peaks', [r['matmul_peak']])) / 1e9:.0f}-{r['matmul_peak'] / 1e9:.0f}; "
        f"{r['flops_per_image'] / 1e9:.3f} GFLOP per image, XLA's count of this project's step) | "
        f"{100 * r['mfu_ours']:.1f}% | {100 * r['mfu_tfp_at_our_count']:.1f}% (at our count) | |",
        "",
        f"Median of the per-round ratios (each pair ran back to back): {r['ratio_paired']:.2f}. "
        f"Project figures time the whole `model.fit(...)` call, one epoch of {a.steps} steps on the input "
        "`zoo.train` builds for each epoch (`zoo.training.epoch_dataset`: the epoch's (seed, epoch) order, "
        "built inside the timed call; warm-up `fit`s before the first round traced the step and ran the act-norm "
        f"init); timing the epoch alone (fit's setup and teardown excluded) gives "
        f"{r['ours_epoch_median']:.1f} images/s (ratio {r['ours_epoch_median'] / r['tfp_median']:.2f}). "
        + (f"The same model fed the NumPy array (Keras's array adapter; its tf.data pipeline keeps autotuning "
           f"on) ran at {r['array_median']:.1f} images/s per `fit` call, {r['array_epoch_median']:.1f} for the "
           "epoch alone (per round: " + fmt(r["array_rounds"]) + "). Time each `fit` call spent outside its epoch "
           "(set-up before, teardown after), per round: array-fed " + ", ".join(f"{v:.2f}" for v in r["array_after_epoch"])
           + " s; on zoo.train's input " + ", ".join(f"{v:.2f}" for v in r["ours_after_epoch"]) + " s. With "
           "tf.data's autotuning on (Keras's array adapter), dropping the iterator at the end of `fit` can stall; "
           "`zoo.training` turns autotuning off for its one-epoch datasets (`short_lived`). "
           if "array_median" in r
           else "")
        +
        f"TFP figures time {a.steps} calls of its `tf.function` step on pre-built batch tensors after "
        f"{a.warmup} warm-up calls (act-norm init, tracing, optimizer slots). Rounds alternate "
        "project / TFP. The CPU-second row divides images by the user + system CPU time of the "
        "process during each round: it is less sensitive than wall time to other processes "
        "sharing the machine (not immune: contention also inflates CPU time).",
        "",
        *bf16_lines(r, a),
        "**Where the project's step time goes** (`tf.profiler` trace of 10 calls of the same "
        f"`train_step` graph after the rounds, op time per type summed over TensorFlow's compute threads): "
        f"{r['profile_wall_ms']:.0f} ms wall per step of {a.batch_size} images, {r['profile_busy_ms']:.0f} "
        f"thread-ms busy ({r['profile_busy_ms'] / r['profile_wall_ms'] / max(1, r['own_threads']):.0%} of "
        f"{r['own_threads']} threads x wall); at that wall time the step runs at "
        f"{100 * r['flops_per_image'] * a.batch_size / (r['profile_wall_ms'] / 1e3) / r['matmul_peak']:.1f}% of the "
        "peak (the bare step, without `fit`'s per-call costs and the rounds' noise). Largest: "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in r["profile_ops"][:10])
        + f" thread-ms; the convolutions (forward, input and filter gradients) take "
        f"{r['profile_conv_share']:.0%} of the busy time. Channel splits are single `split` ops "
        "(`layers.split_channels`): as two slices, their gradients (`StridedSliceGrad`, a scatter into a "
        "zero tensor each) took 25 of 215 busy thread-ms per step on an Intel Xeon, and removing them took "
        "the ratio from 1.61 to 1.80 there.",
        "",
        heavy_op_paragraph(r, a),
        "",
        *([phases_paragraph(r, a), ""] if "phases" in r else []),
        "**Configuration** (both models): "
        f"images {a.height}x{a.width}x{a.channels} (random uint8 from NumPy, seed {a.seed}), "
        f"{a.levels} levels (TFP `num_glow_blocks`) x {a.steps_per_level} steps "
        f"(`num_steps_per_block`), coupling width {a.hidden_channels}, batch {a.batch_size}, "
        f"Adam lr {a.learning_rate:g}, float32, XLA `jit_compile={a.jit_compile}` ({jit_text}), "
        f"`steps_per_execution={a.steps_per_execution}` (project). TFP blockwise splits "
        f"(leave, grab, pass; deepest block first): {r['tfp_splits']}.",
        "",
        "**Machine:** "
        f"CPU {m['cpu_model']} (`model name` in /proc/cpuinfo), {m['logical_cpus']} logical CPUs "
        f"({m['usable_cpus']} usable), {m['gpus'] or 'no'} GPU; TF intra/inter-op threads "
        f"{m['intra_op_threads'] or 'default'}/{m['inter_op_threads'] or 'default'}; {m['platform']}, "
        f"Python {m['python']}; TensorFlow {m['tensorflow']}, Keras {m['keras']}, tf_keras {m['tf_keras']}, "
        f"TensorFlow Probability {m['tfp']}. During the {r['timed_seconds']:.0f} s of timed rounds this "
        f"process used {r['own_cores']:.2f} cores on average and other processes {other} cores "
        f"(load average {r['load_before']} before, {r['load_after']} after); when other processes "
        "share the machine the wall-clock rounds are noisy, hence the per-round figures.",
        "",
        f"**Date:** {r['date']}",
        "",
        "**Command** (from the repository root):",
        "",
        "```",
        r["command"],
        "```",
        "",
        "**Remaining differences between the two configurations:**",
        "",
        "- *Coupling*: both condition the second half of the channels on the first with "
        f"Conv2D({a.hidden_channels}, 3x3, ReLU) -> Conv2D({a.hidden_channels}, 1x1, ReLU) -> "
        "Conv2D(2 x C/2, 3x3, zero init) (TFP: `GlowDefaultNetwork(num_hidden="
        f"{a.hidden_channels}, kernel_shape=3)`). The scale differs: project "
        "`exp(2 tanh(r / 2))`, TFP `sigmoid(r + 2)`; hidden-layer init glorot-uniform (project) vs "
        "he-normal (TFP). Same amount of convolution per coupling.",
        "- *Exits*: TFP's Glow normally couples the exiting channels to the remaining ones with a "
        "learned conv (`exit_bijector_fn`, e.g. `GlowDefaultExitNetwork`); the project has no such "
        "split prior, so TFP is given an `exit_bijector_fn` that returns `tfb.Identity()` (a RealNVP "
        "split/concat around an identity, no weights). `grab_after_block=(0.5, ..., 0.5, 0.0)` "
        "(fractions of the remaining channels that leave after each block, image side first; also "
        "TFP's default) makes half of the channels leave after every level but the last, as in "
        "the project.",
        "- *1x1 convolutions*: both LU-parameterized. TFP stores one packed `lower_upper` matrix "
        "(C^2 parameters) and applies `tf.linalg.matvec(lu_reconstruct(...), x)`, a batched "
        "matrix-vector product per pixel; the project stores full `lower` and `upper` matrices "
        "that are masked (2 C^2 + C stored, C^2 free: the two counts above) and a permutation "
        "matrix, assembles W = P L U and applies one `matmul` over all pixels. Free parameter "
        "counts are equal.",
        "- *Act-norm*: the project runs its data-dependent init once, eagerly, before `fit`; TFP "
        "keeps a `tf.cond` on an `initialized` flag in every step (it initialized on its first call, "
        "made before timing).",
        "- *Preprocessing*: the same on both sides (uniform dequantization of 8-bit levels, logit "
        f"with alpha={LOGIT_ALPHA}, their log-dets, loss in bits/dim); the project also asserts in "
        "the graph that inputs are whole numbers in [0, 255] (`check_integer_range`).",
        "- *Input and optimizer*: the project reads a NumPy array through `fit`'s data adapter "
        "(tf.data, shuffled) and uses Keras 3 Adam; TFP's step gets pre-built batch tensors (no "
        "input pipeline: the cheapest feed) and uses `tf_keras` Adam.",
        "- *Log-det evaluation (TFP's implementation, not a configuration choice)*: TFP's `RealNVP` "
        "calls the coupling network once for the transform and again for the log-det "
        "(`_forward` and `_forward_log_det_jacobian` each call `bijector_fn`), and TensorFlow does "
        f"not merge the two: the TFP step graph has {r['tfp_conv_ops']} forward Conv2D ops for "
        f"{r['num_couplings']} couplings, {r['tfp_conv_ops'] / max(1, 3 * r['num_couplings']):.0f}x the "
        "3 per coupling that the project runs, and the backward pass doubles with them.",
        "",
    ]
    return "\n".join(lines)


def bf16_lines(r, a):
    """The project's step under ``mixed_bfloat16`` (timed in the same rounds) against both matmul peaks."""
    if "bf16" not in r:
        return []
    h = r["bf16"]
    fmt = lambda values: ", ".join(f"{v:.0f}" for v in values)  # noqa: E731
    peak_text = lambda peaks: (f"{max(peaks) / 1e9:.0f} (largest of {len(peaks)}, range "  # noqa: E731
                               f"{min(peaks) / 1e9:.0f}-{max(peaks) / 1e9:.0f})")
    units = ", ".join(h["units"]) if h["units"] else "none (bfloat16 is emulated: expect no gain)"
    return [
        "**Mixed precision in the same rounds** (the project's model built under Keras's "
        "`mixed_bfloat16` policy: coupling conditioners compute in bfloat16, everything that carries the density "
        f"in float32; issue 17 part 4). bfloat16 units in /proc/cpuinfo: {units}. The model FLOPs are the same "
        "count; each policy's utilization is against the matmul peak of its own dtype (1024^2, sampled every "
        "round), and the bfloat16 step is also put against the float32 peak.",
        "",
        "| policy | images/s, median | per round | vs float32 | matmul peak of its dtype, GFLOP/s | "
        "utilization vs that peak | vs the fp32 peak | final loss, bits/dim |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        f"| float32 | {r['ours_median']:.1f} | {fmt(r['ours_rounds'])} | 1.00x | {peak_text(r['matmul_peaks'])} | "
        f"{100 * r['mfu_ours']:.1f}% | {100 * r['mfu_ours']:.1f}% | {r['ours_loss']:.3f} |",
        f"| mixed_bfloat16 | {h['median']:.1f} | {fmt(h['rounds'])} | {h['median'] / r['ours_median']:.2f}x | "
        f"{peak_text(h['peaks'])} | {100 * h['mfu_own_peak']:.1f}% | {100 * h['mfu_fp32_peak']:.1f}% | "
        f"{h['loss']:.3f} |",
        "",
        f"The {100 * MFU_TARGET:.0f}% target above is judged on the float32 step (the issue's \"fp32 peak\"); the "
        "bfloat16 row says how much faster the same model trains where the CPU has bfloat16 units, not that "
        "the float32 kernels got more efficient.",
        "",
    ]


def heavy_op_paragraph(r, a):
    h = r["heavy_ops"]
    if not h["rows"]:
        return "**What the step's own convolutions allow**: the step graph has no convolution or matmul ops."
    rate = h["flops"] / max(h["seconds"], 1e-9)
    share = rate / r["matmul_peak"]
    slowest = "; ".join(
        f"{row['op']} {' x '.join(str(list(s)) for s in row['shapes'] if len(s) > 1)} x{row['count']}: "
        f"{row['seconds'] * 1e3:.2f} ms each, {row['flops'] / row['seconds'] / 1e9:.0f} GFLOP/s"
        for row in h["rows"][:6])
    step_rate = r["flops_per_image"] * r["ours_median"]
    if step_rate > rate:
        conclusion = (f"The step itself ran at {step_rate / 1e9:.0f} GFLOP/s (XLA's count x the median images/s), faster "
                      "than these ops one at a time: inside the step independent ops overlap, each on one of the "
                      "threads, where alone each op spreads over all of them, so this sum is not a bound on the step; "
                      "what it shows is each kernel's efficiency at its shape (thin inputs of C/2 channels and small "
                      "spatial sizes at the deep levels run at a fraction of the matmul rate)")
    else:
        conclusion = ("With every other op of the step free, the step would run at about that share: "
                      + (f"the {100 * MFU_TARGET:.0f}% target is above what this CPU's convolution kernels (oneDNN) "
                         "deliver at these shapes (thin inputs of C/2 channels, small spatial sizes at the deep "
                         "levels), so removing overhead around them is unlikely to reach it" if share < MFU_TARGET else
                         f"the {100 * MFU_TARGET:.0f}% target is within reach of the kernels; the rest is overhead"))
    return ("**What the step's own convolutions allow** (`heavy_op_bound`): the step graph's "
            f"{sum(row['count'] for row in h['rows'])} convolution and matmul ops (forward and gradients, "
            f"{len(h['rows'])} distinct shapes) run one at a time, each alone as a `tf.function` at its shape in the "
            f"step (median of 7, minus {h['call_overhead'] * 1e6:.0f} us for calling an empty function): "
            f"{h['flops'] / 1e9:.2f} GFLOP per step of {a.batch_size} images (this count; XLA's: "
            f"{r['flops_per_image'] * a.batch_size / 1e9:.2f}) in {h['seconds'] * 1e3:.0f} ms, "
            f"{rate / 1e9:.0f} GFLOP/s = {100 * share:.1f}% of the matmul peak. " + conclusion
            + f". Largest totals: {slowest}.")


def model_flops(args):
    """Training FLOPs per image of this project's step, counted by XLA (``zoo.presets.compute``, a JAX process)."""
    import json
    import subprocess

    config = {"image_shape": [args.height, args.width, args.channels], "num_levels": args.levels,
              "steps_per_level": args.steps_per_level, "hidden_channels": args.hidden_channels, "n_bits": 8}
    run = subprocess.run([sys.executable, "-m", "zoo.presets.compute", "--builder", "make_glow", "--kwargs",
                          json.dumps(config)], capture_output=True, text=True, cwd=REPO_ROOT,
                         env=dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=REPO_ROOT), timeout=900)
    if run.returncode:
        raise RuntimeError(f"counting the FLOPs failed:\n{run.stderr[-2000:]}")
    counted = json.loads(next(line for line in run.stdout.splitlines() if line.startswith("COMPUTE "))[8:])
    return counted["train_flops_per_example"] + counted["train_flops_per_step_fixed"] / args.batch_size


def matmul_peak(size=1024, repeats=7, dtype=tf.float32):
    """FLOP/s of a ``size x size`` TensorFlow matmul in ``dtype`` on this machine, median of ``repeats``."""
    a = tf.cast(tf.random.normal((size, size)), dtype)
    matmul = tf.function(lambda x: tf.matmul(x, x))
    matmul(a).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a).numpy()
        times.append(time.perf_counter() - start)
    return 2.0 * size**3 / statistics.median(times)


def op_time_breakdown(model, batch, steps=10):
    """Where a training step's CPU time goes: TensorFlow op time per op type, summed over the compute threads.

    Traces ``steps`` calls of ``model.train_step`` (a ``tf.function``, the
    same graph ``fit`` runs) with ``tf.profiler`` and adds the durations of
    the op events of the TensorFlow compute threads by op type. Returns
    ``(wall ms per step, busy thread-ms per step, [(op type, thread-ms per
    step), ...] largest first)``.
    """
    import collections
    import glob
    import tempfile

    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    step = tf.function(model.train_step)
    for _ in range(3):
        step(batch)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(steps):
            logs = step(batch)
        float(logs["loss"])
        wall = (time.perf_counter() - start) / steps
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        with open(sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")))[-1], "rb") as f:
            space.ParseFromString(f.read())
    per_type, busy = collections.Counter(), 0.0
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "?").rsplit(":", 1)[-1]  # "op name:op type" -> the type
                milliseconds = event.duration_ps / 1e9 / steps
                if name.endswith("Process"):  # the executor's whole run on this thread
                    busy += milliseconds
                else:
                    per_type[name.removeprefix("_MklNative").removeprefix("_Mkl")] += milliseconds
    return 1e3 * wall, busy, per_type.most_common()


def step_phases(model, batches, make_input, rounds=5):
    """Where ``fit``'s step time goes, by phase: interleaved rounds, one process, the same trained model.

    Each round times, back to back: ``fit`` for one epoch on ``make_input()``
    (zoo.train's input; ``time_ours``'s epoch time); the bare step (``tf.function(model.train_step)``
    called on pre-built batch tensors: no input pipeline, no ``fit``); the
    step without the optimizer (loss and gradients only); the forward pass
    (loss only). Each is ms per step over ``len(batches)`` steps; the ratios
    to the bare step are taken within each round (slow drifts of the host's
    clocks cancel) and their medians returned.
    """
    import tensorflow as tf

    variables = model.trainable_variables
    bare = tf.function(model.train_step)

    @tf.function
    def gradients_only(x):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=x, training=True)
        return tf.add_n([tf.reduce_sum(g) for g in tape.gradient(loss, variables)])

    @tf.function
    def forward_only(x):
        return model.compute_loss(x=x, training=True)

    def loop(fn):
        def timed():
            start = time.perf_counter()
            for x in batches:
                out = fn(x)
            tf.nest.map_structure(lambda t: t.numpy(), out)  # wait for the last step
            return time.perf_counter() - start
        return timed

    phases = {"fit": lambda: time_ours(model, make_input)[1], "bare step": loop(bare), "no optimizer": loop(gradients_only),
              "forward": loop(forward_only)}
    for fn in (bare, gradients_only, forward_only):
        fn(batches[0])  # trace
    ms = {name: [] for name in phases}
    for _ in range(rounds):
        for name, timed in phases.items():
            ms[name].append(1e3 * timed() / len(batches))
    return {name: {"ms": values, "median_ms": statistics.median(values),
                   "ratio_to_bare": statistics.median(v / b for v, b in zip(values, ms["bare step"]))}
            for name, values in ms.items()}


def phases_paragraph(r, a):
    """The ``step_phases`` result as a paragraph of the section."""
    p = r["phases"]
    bare = p["bare step"]["median_ms"]
    rate = lambda ms: 100 * r["flops_per_image"] * a.batch_size / (ms / 1e3) / r["matmul_peak"]  # noqa: E731
    optimizer_share = 1 - p["no optimizer"]["ratio_to_bare"]
    return (f"**Where `fit`'s step time goes, by phase** (`step_phases`: {len(p['fit']['ms'])} interleaved rounds "
            f"after the others, {a.steps} steps each, ms per step of {a.batch_size} images, median; ratios to the "
            "bare step taken within each round): `fit` on zoo.train's input "
            f"{p['fit']['median_ms']:.1f} ms ({p['fit']['ratio_to_bare']:.2f}x the bare step, "
            f"{rate(p['fit']['median_ms']):.1f}% of the peak); the bare step (`tf.function(model.train_step)` on "
            f"pre-built batch tensors) {bare:.1f} ms ({rate(bare):.1f}%); without the optimizer (loss and "
            f"gradients only) {p['no optimizer']['median_ms']:.1f} ms ({p['no optimizer']['ratio_to_bare']:.2f}x: "
            f"Adam's update and the metrics take about {100 * optimizer_share:.0f}% of the step); the forward pass "
            f"alone {p['forward']['median_ms']:.1f} ms ({p['forward']['ratio_to_bare']:.2f}x). `fit` and its input "
            f"pipeline cost {100 * (p['fit']['ratio_to_bare'] - 1):.0f}% over the bare step, the optimizer about "
            f"{100 * optimizer_share:.0f}%; the rest is the forward and backward convolutions themselves.")


HEAVY_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul", "BatchMatMulV2")


def _op_flops(op):
    """FLOPs (multiply-adds x 2) of one heavy graph op from its static shapes."""
    shape = lambda tensor: [int(d) for d in tensor.shape]  # noqa: E731
    if op.type == "Conv2D":
        kh, kw, cin, _ = shape(op.inputs[1])
        return 2 * math.prod(shape(op.outputs[0])) * kh * kw * cin
    if op.type == "Conv2DBackpropInput":  # (input_sizes, filter, out_backprop) -> d input; any stride
        kh, kw, cin, _ = shape(op.inputs[1])
        return 2 * math.prod(shape(op.inputs[2])) * kh * kw * cin
    if op.type == "Conv2DBackpropFilter":  # (input, filter_sizes, out_backprop) -> d filter
        kh, kw, cin, cout = shape(op.outputs[0])
        return 2 * math.prod(shape(op.inputs[2])[:-1]) * kh * kw * cin * cout
    a, b = shape(op.inputs[0]), shape(op.inputs[1])
    transpose_a = op.get_attr("transpose_a" if op.type == "MatMul" else "adj_x")
    inner = a[-2] if transpose_a else a[-1]
    return 2 * math.prod(shape(op.outputs[0])) * inner


def heavy_op_bound(model, batch, repeats=7):
    """How fast the step's convolutions and matmuls run when each runs alone, at the step's own shapes.

    Lists the forward and gradient ``Conv2D`` / ``MatMul`` ops of the traced
    ``train_step`` graph (the graph ``fit`` runs), runs each distinct op
    (type, shapes, attributes) alone as a ``tf.function`` on random inputs
    (median of ``repeats`` after a warm-up) and sums time x count. The sum is
    what these ops cost without anything else in the step; their FLOPs over
    that time is the utilization the step could reach with every other op
    free (ops of the step may also overlap on several threads, so it is where
    the time goes rather than a strict bound). Each time is the median minus
    the cost of calling an empty ``tf.function``. Returns ``{"rows", "flops",
    "seconds", "call_overhead"}``, rows as ``{"op", "shapes", "count",
    "flops", "seconds"}`` per distinct op, largest total time first.
    """
    import collections

    graph = tf.function(model.train_step).get_concrete_function(batch).graph
    groups = collections.OrderedDict()
    functions = [graph] + [f.graph for f in graph._functions.values() if hasattr(f, "graph")]
    for g in functions:
        for op in g.get_operations():
            if op.type not in HEAVY_OPS:
                continue
            attrs = {name: op.get_attr(name) for name in op.node_def.attr if name not in ("T", "_class")}
            # the int32 size operands of the gradient convolutions are the shape of the op's output
            static = [np.array([int(d) for d in op.outputs[0].shape], np.int32) if t.dtype == tf.int32 else None
                      for t in op.inputs]
            key = (op.type, tuple(tuple(int(d) for d in t.shape) for t in op.inputs),
                   tuple(sorted((k, str(v)) for k, v in attrs.items())))
            if key not in groups:
                groups[key] = {"op": op.type, "shapes": key[1], "count": 0, "flops": _op_flops(op), "attrs": attrs,
                               "static": static}
            groups[key]["count"] += 1
    rows = []
    rng = np.random.default_rng(0)
    empty = tf.function(lambda x: x + 1.0)  # the cost of calling a tf.function and fetching a tensor
    tiny = tf.constant(np.zeros((1,), np.float32))
    empty(tiny).numpy()
    overhead = []
    for _ in range(5 * repeats):
        start = time.perf_counter()
        empty(tiny).numpy()
        overhead.append(time.perf_counter() - start)
    overhead = statistics.median(overhead)
    for row in groups.values():
        inputs = [tf.constant(value) if value is not None else
                  tf.constant(rng.standard_normal(shape).astype("float32"))
                  for value, shape in zip(row["static"], row["shapes"])]
        raw = getattr(tf.raw_ops, row["op"])
        names = {"Conv2D": ("input", "filter"), "Conv2DBackpropInput": ("input_sizes", "filter", "out_backprop"),
                 "Conv2DBackpropFilter": ("input", "filter_sizes", "out_backprop"), "MatMul": ("a", "b"),
                 "BatchMatMulV2": ("x", "y")}[row["op"]]
        attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in row.pop("attrs").items()
                 if k in ("strides", "padding", "data_format", "dilations", "transpose_a", "transpose_b", "adj_x",
                          "adj_y", "explicit_paddings", "use_cudnn_on_gpu")}
        call = tf.function(lambda *xs: raw(**dict(zip(names, xs)), **attrs))
        call(*inputs).numpy()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call(*inputs).numpy()
            times.append(time.perf_counter() - start)
        row.pop("static")
        row["seconds"] = max(statistics.median(times) - overhead, 1e-6)
        rows.append(row)
    rows.sort(key=lambda r: -r["seconds"] * r["count"])
    return {"rows": rows, "flops": sum(r["flops"] * r["count"] for r in rows),
            "seconds": sum(r["seconds"] * r["count"] for r in rows), "call_overhead": overhead}


def count_forward_conv_ops(train_step, example):
    """Conv2D ops (forward only, not gradients) in the traced TFP step graph."""
    graph = train_step.get_concrete_function(example).graph
    return sum(1 for op in graph.get_operations() if op.type == "Conv2D" and "gradients" not in op.name)


# ----------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    # Thread pools are fixed when TensorFlow's runtime starts: set them before the first op.
    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    keras.utils.set_random_seed(args.seed)
    tf_keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    shape = (args.height, args.width, args.channels)
    b = args.batch_size
    warm_images = rng.integers(0, 256, size=(args.warmup * b,) + shape, dtype=np.uint8)
    images = rng.integers(0, 256, size=(args.steps * b,) + shape, dtype=np.uint8)
    machine = machine_description()
    print(f"machine: {machine}")
    print(f"config: {vars(args)}")

    # Ours: build, compile, warm-up fit (act-norm init + tracing).
    t0 = time.perf_counter()
    model = build_ours(args)
    model.fit(warm_images, batch_size=b, epochs=1, verbose=0)
    model.fit(epoch_dataset(warm_images, 0, b, args.seed), epochs=1, verbose=0)  # traces the epoch input too
    print(f"ours: built + warm-up fit in {time.perf_counter() - t0:.1f}s")
    ours_params = ours_param_counts(model)
    bf16_model = None
    if not args.no_bf16:  # the same model under Keras's mixed_bfloat16 policy, timed in the same rounds
        t0 = time.perf_counter()
        bf16_model = build_ours(args, "mixed_bfloat16")
        bf16_model.fit(epoch_dataset(warm_images, 0, b, args.seed), epochs=1, verbose=0)
        print(f"ours (mixed_bfloat16): built + warm-up fit in {time.perf_counter() - t0:.1f}s")

    # TFP: build, first call (act-norm init, variables), warm-up steps (tracing, slots).
    t0 = time.perf_counter()
    glow, dist = build_tfp(args)
    num_dims = math.prod(shape)
    z0, _ = tfp_preprocess(tf.constant(warm_images[:b]), num_dims)
    dist.log_prob(z0)  # eager first call: act-norm data-dependent init
    train_step = make_tfp_train_step(glow, dist, args)
    warm_batches = [tf.constant(warm_images[i * b:(i + 1) * b]) for i in range(args.warmup)]
    time_tfp(train_step, warm_batches)
    print(f"tfp: built + warm-up steps in {time.perf_counter() - t0:.1f}s")
    tfp_params = {"stored": n_params(glow.trainable_variables), "variables": len(glow.trainable_variables)}
    tfp_conv_ops = count_forward_conv_ops(train_step, warm_batches[0])
    # TFP's step is fed pre-built eager batches: no input pipeline at all, the
    # cheapest way to feed it (tf.data iteration was measured to add stalls).
    tfp_batches = [tf.constant(images[i * b:(i + 1) * b]) for i in range(args.steps)]

    ours_rounds, ours_epoch_rounds, tfp_rounds, bf16_rounds, bf16_peaks = [], [], [], [], []
    array_rounds, array_epoch_rounds = [], []  # the same model fed the NumPy array (Keras's array adapter)
    ours_after_epoch, array_after_epoch = [], []  # seconds of each fit call outside its epoch
    ours_cpu_rounds, tfp_cpu_rounds = [], []  # images per CPU-second of this process
    ours_loss = tfp_loss = bf16_loss = float("nan")
    n_images = args.steps * b
    load_before = load_average()
    peak_before = matmul_peak()
    with CpuContention() as contention:
        peaks = [peak_before]
        for rnd in range(args.rounds):
            if rnd:
                peaks.append(matmul_peak())  # the peak moves with the host's load and clocks: sample it throughout
            if bf16_model is not None:
                bf16_peaks.append(matmul_peak(dtype=tf.bfloat16))
            cpu = process_cpu_seconds()
            # zoo.train's input: the epoch's (seed, epoch) order through zoo.training.epoch_dataset
            wall, epoch, ours_loss = time_ours(model, lambda: epoch_dataset(images, rnd + 1, b, args.seed))
            ours_cpu_rounds.append(n_images / (process_cpu_seconds() - cpu))
            ours_rounds.append(n_images / wall)
            ours_epoch_rounds.append(n_images / epoch)
            ours_after_epoch.append(wall - epoch)
            bf16_text = ""
            if bf16_model is not None:
                wall16, _, bf16_loss = time_ours(bf16_model, lambda: epoch_dataset(images, rnd + 1, b, args.seed))
                bf16_rounds.append(n_images / wall16)
                bf16_text = f" | ours bf16 {bf16_rounds[-1]:.1f} img/s (loss {bf16_loss:.3f})"
            wall_array, epoch_array, _ = time_ours(model, lambda: images, b)
            array_rounds.append(n_images / wall_array)
            array_epoch_rounds.append(n_images / epoch_array)
            array_after_epoch.append(wall_array - epoch_array)
            cpu = process_cpu_seconds()
            seconds, tfp_loss = time_tfp(train_step, tfp_batches)
            tfp_cpu_rounds.append(n_images / (process_cpu_seconds() - cpu))
            tfp_rounds.append(n_images / seconds)
            print(
                f"round {rnd + 1}/{args.rounds}: ours {ours_rounds[-1]:.1f} img/s (fit {wall:.2f}s, "
                f"epoch {epoch:.2f}s, loss {ours_loss:.3f}){bf16_text} | tfp {tfp_rounds[-1]:.1f} img/s "
                f"({seconds:.2f}s, loss {tfp_loss:.3f}) | load {load_average()}",
                flush=True,
            )

    result = {
        "args": args,
        "machine": machine,
        "ours_rounds": ours_rounds,
        "tfp_rounds": tfp_rounds,
        "ours_median": statistics.median(ours_rounds),
        "ours_epoch_median": statistics.median(ours_epoch_rounds),
        "array_rounds": array_rounds,
        "array_median": statistics.median(array_rounds),
        "array_epoch_median": statistics.median(array_epoch_rounds),
        "ours_after_epoch": ours_after_epoch,
        "array_after_epoch": array_after_epoch,
        "tfp_median": statistics.median(tfp_rounds),
        "ours_params": ours_params,
        "tfp_params": tfp_params,
        "ours_loss": ours_loss,
        "tfp_loss": tfp_loss,
        "tfp_splits": [list(map(int, s)) for s in glow.blockwise_splits],
        "tfp_conv_ops": tfp_conv_ops,
        "num_couplings": args.levels * args.steps_per_level,
        "load_before": load_before,
        "load_after": load_average(),
        "own_cores": contention.own_cores,
        "other_cores": contention.other_cores,
        "timed_seconds": contention.wall,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["python", os.path.relpath(os.path.abspath(sys.argv[0]), REPO_ROOT)] + sys.argv[1:]),
    }
    result["ratio"] = result["ours_median"] / result["tfp_median"]
    result["profile_wall_ms"], result["profile_busy_ms"], result["profile_ops"] = op_time_breakdown(
        model, tf.constant(images[:b]))
    result["profile_conv_share"] = sum(ms for name, ms in result["profile_ops"] if "Conv2D" in name) / max(
        result["profile_busy_ms"], 1e-9)
    result["own_threads"] = machine["usable_cpus"]
    result["heavy_ops"] = heavy_op_bound(model, tf.constant(images[:b]))
    result["phases"] = step_phases(model, [tf.constant(images[i * b:(i + 1) * b]) for i in range(args.steps)],
                                   lambda: epoch_dataset(images, 0, b, args.seed), rounds=args.phase_rounds)
    # Performance model: this step's FLOPs (XLA's count of the same model) against a matmul peak of this run.
    result["flops_per_image"] = model_flops(args)
    result["matmul_peak_before"], result["matmul_peak_after"] = peak_before, matmul_peak()
    result["matmul_peaks"] = peaks + [result["matmul_peak_after"]]
    result["matmul_peak"] = max(result["matmul_peaks"])  # the conservative choice: utilization against the best
    result["mfu_ours"] = result["flops_per_image"] * result["ours_median"] / result["matmul_peak"]
    result["mfu_tfp_at_our_count"] = result["flops_per_image"] * result["tfp_median"] / result["matmul_peak"]
    if bf16_model is not None:
        bf16_peaks.append(matmul_peak(dtype=tf.bfloat16))
        bf16 = {"rounds": bf16_rounds, "median": statistics.median(bf16_rounds), "loss": bf16_loss,
                "peaks": bf16_peaks, "peak": max(bf16_peaks), "units": common.bf16_units()}
        bf16["mfu_own_peak"] = result["flops_per_image"] * bf16["median"] / bf16["peak"]
        bf16["mfu_fp32_peak"] = result["flops_per_image"] * bf16["median"] / result["matmul_peak"]
        result["bf16"] = bf16
    result["ours_cpu_median"] = statistics.median(ours_cpu_rounds)
    result["tfp_cpu_median"] = statistics.median(tfp_cpu_rounds)
    result["ratio_cpu"] = result["ours_cpu_median"] / result["tfp_cpu_median"]
    # Two estimates that are more robust on a shared machine: the ratio of the
    # best rounds (least disturbed), and the median of the per-round ratios
    # (each pair ran back to back, so slow drifts in load cancel).
    result["ratio_best"] = max(ours_rounds) / max(tfp_rounds)
    result["ratio_paired"] = statistics.median(o / t for o, t in zip(ours_rounds, tfp_rounds))
    print(
        f"\nours {result['ours_median']:.1f} img/s, tfp {result['tfp_median']:.1f} img/s, "
        f"ratio ours/tfp {result['ratio']:.2f} (best rounds {result['ratio_best']:.2f}, "
        f"median of per-round ratios {result['ratio_paired']:.2f})"
    )
    print(
        f"per CPU-second: ours {result['ours_cpu_median']:.1f} img/cpu-s, tfp {result['tfp_cpu_median']:.1f} "
        f"img/cpu-s, ratio {result['ratio_cpu']:.2f}"
    )
    other = "unknown" if contention.other_cores is None else f"{contention.other_cores:.2f}"
    print(
        f"timed rounds: {contention.wall:.1f}s, this process used {contention.own_cores:.2f} cores, "
        f"other processes {other} cores; load average before {result['load_before']}, after {result['load_after']}"
    )
    print(f"profile of one step: {result['profile_wall_ms']:.1f} ms wall, {result['profile_busy_ms']:.1f} "
          "thread-ms busy; " + ", ".join(f"{k} {v:.1f}" for k, v in result["profile_ops"][:12]))
    print(f"params: ours {ours_params}, tfp {tfp_params}; tfp forward Conv2D ops {tfp_conv_ops}")
    print(f"FLOPs: {result['flops_per_image'] / 1e9:.3f} GFLOP per image (XLA count); fp32 matmul peak "
          f"{result['matmul_peak'] / 1e9:.0f} GFLOP/s (before {result['matmul_peak_before'] / 1e9:.0f}, after "
          f"{result['matmul_peak_after'] / 1e9:.0f}); utilization ours {100 * result['mfu_ours']:.1f}%, tfp at our "
          f"count {100 * result['mfu_tfp_at_our_count']:.1f}%")
    if "bf16" in result:
        bf16 = result["bf16"]
        print(f"mixed_bfloat16: ours {bf16['median']:.1f} img/s ({bf16['median'] / result['ours_median']:.2f}x float32); "
              f"bf16 matmul peak {bf16['peak'] / 1e9:.0f} GFLOP/s; utilization {100 * bf16['mfu_own_peak']:.1f}% of the "
              f"bf16 peak, {100 * bf16['mfu_fp32_peak']:.1f}% of the fp32 peak; bf16 units: {bf16['units'] or 'none'}")
    print(heavy_op_paragraph(result, args))
    print(phases_paragraph(result, args))
    if not args.no_write:
        common.write_section(args.doc, SECTION_HEADING, render_section(result))
        print(f"wrote section '{SECTION_HEADING}' to {args.doc}")
    return result


if __name__ == "__main__":
    main()
