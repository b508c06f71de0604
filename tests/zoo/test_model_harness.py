"""The model harness (zoo.testing.check_model) over one small preset of every variant, and the same under JAX.

One test per variant runs every check on a model trained once (the checks
share it); the SavedModels and LiteRT samplers of a test process are served
by one long-lived process that cannot import the project
(tests/zoo/harness_serve.py). One JAX subprocess builds, fits a step and
samples every variant (tests/zoo/harness_jax.py). A registry family without
a case fails ``test_every_registered_family_has_a_harness_case``.
"""

import json
import os
import select
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

import export
import zoo
from zoo import testing

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

GLOW = dict(num_levels=1, steps_per_level=1, hidden_channels=8)
AUTOENCODER = dict(hidden_channels=4)
SPIRAL = dict(num_couplings=1, hidden_units=16)
# 2-D data: cheap steps on large batches (small batches of a spiral differ too much for a trend in 16 steps).
VECTOR_RUN = dict(num_examples=2048, batch_size=256, training={"learning_rate": 1e-2})

DEEP_GLOW = dict(GLOW, latent_flow_couplings=2, latent_flow_hidden_units=16)

# family -> (preset, dataset, overrides, extra check_model arguments)
CASES = {
    "nf": ("nf_digits", "digits", GLOW, {}),
    "nif": ("nif_digits_16", "digits", GLOW, {}),
    "deep_nif": ("deep_nif_digits_16", "digits", DEEP_GLOW, {}),
    "injflow": ("injflow_digits_8", "digits", AUTOENCODER, {}),
    "injflow_ln": ("injflow_ln_digits_8", "digits", AUTOENCODER, {}),
    "ae": ("ae_digits_8", "digits", AUTOENCODER, {}),
    "ae_l2": ("ae_l2_digits_8", "digits", AUTOENCODER, {}),
    "ae_sn": ("ae_sn_digits_8", "digits", AUTOENCODER, {}),
    "cae": ("cae_digits_8", "digits", AUTOENCODER, {}),
    "vae": ("vae_digits_8", "digits", AUTOENCODER, {}),
    "beta_vae": ("beta_vae_digits_8", "digits", AUTOENCODER, {}),
    "dnf": ("dnf_spiral_1", "spiral", SPIRAL, VECTOR_RUN),
    # Three epochs per phase; one coupling cannot lower the manifold phase's reconstruction of the spiral.
    "mflow": ("mflow_spiral_1", "spiral", dict(SPIRAL, num_couplings=2), dict(VECTOR_RUN, epochs=6)),
    "pie": ("pie_spiral_1", "spiral", SPIRAL, VECTOR_RUN),
    "spread": ("spread_sin", "sin", dict(hidden_units=16), VECTOR_RUN),
    "nf_spread": ("nf_spread_sin", "sin", dict(hidden_units=16), VECTOR_RUN),
}
# Second cases where a family has a second data kind (image DNFs; float images of the spread flows).
EXTRA_CASES = {
    "dnf_image": ("dnf_digits_8", "digits", DEEP_GLOW, {}),
    "spread_image": ("spread_fading_square", "fading_squares",
                     dict(steps_per_level=1, hidden_channels=4, num_couplings=1, hidden_units=8),
                     dict(batch_size=32, validation_examples=64)),  # (32x32 images: 64 of the 2000 test images)
}
# The class-conditional presets (issue 18): the same checks with the dataset's labels and every class drawn.
CONDITIONAL_CASES = {
    "nf_conditional": ("nf_digits_conditional", "digits", GLOW, {}),
    "nif_conditional": ("nif_digits_conditional_16", "digits", GLOW, {}),
    "deep_nif_conditional": ("deep_nif_digits_conditional_16", "digits", DEEP_GLOW, {}),
    # (the post-hoc GMM of each class needs 10 encodings of it: 256 examples give each digit about 25)
    "injflow_conditional": ("injflow_digits_conditional_8", "digits", AUTOENCODER, dict(num_examples=256)),
    "dnf_image_conditional": ("dnf_digits_conditional_8", "digits", DEEP_GLOW, {}),
}
ALL_CASES = {**CASES, **EXTRA_CASES, **CONDITIONAL_CASES}


# First in the file: its one long subprocess starts at once on one pytest-xdist worker.
def test_every_variant_builds_fits_a_step_and_samples_under_jax(tmp_path):
    cases = [{"case": case, "preset": preset, "dataset": dataset, "overrides": overrides}
             for case, (preset, dataset, overrides, _) in sorted({**CASES, **CONDITIONAL_CASES}.items())]
    # (one preset per variant, and the class-conditional ones: JAX trains them on (images, labels) too)
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    # One XLA thread: the test processes of pytest-xdist run beside it on the same cores.
    xla_flags = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                 "intra_op_parallelism_threads=1").strip()
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, XLA_FLAGS=xla_flags)
    result = subprocess.run([sys.executable, os.path.join(HERE, "harness_jax.py"), str(spec)], env=env,
                            capture_output=True, text=True, timeout=900, cwd=str(tmp_path))
    lines = [json.loads(line[len("HARNESS_JAX "):]) for line in result.stdout.splitlines()
             if line.startswith("HARNESS_JAX ")]
    assert result.returncode == 0 and len(lines) == len(cases), result.stdout[-3000:] + result.stderr[-6000:]
    failed = {line["case"]: line["error"] for line in lines if not line["ok"]}
    assert not failed, "under KERAS_BACKEND=jax:\n" + "\n".join(f"[{k}] {v}" for k, v in failed.items())
    assert {line["backend"] for line in lines} == {"jax"}


# ------------------------------------------------------------------ serving without the project
class ProjectFreeServer:
    """One ``harness_serve.py`` process for all of a test process's exports (``check_model``'s ``serve``)."""

    def __init__(self, directory, timeout=300):
        self.directory, self.timeout, self.count = directory, timeout, 0
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.log = open(os.path.join(directory, "serve.log"), "w")
        self.process = subprocess.Popen([sys.executable, os.path.join(HERE, "harness_serve.py")], cwd=directory,
                                        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                        text=True, bufsize=1)
        self._answer()  # ready

    def _answer(self):
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], max(0.0, deadline - time.time()))
            if not ready:
                break
            line = self.process.stdout.readline()
            if not line:
                break
            if line.startswith("HARNESS_SERVE "):
                message = json.loads(line[len("HARNESS_SERVE "):])
                if not message["ok"]:
                    raise AssertionError(f"serving without the project failed:\n{message['error']}")
                return message
        with open(self.log.name) as f:
            log = f.read()[-3000:]
        raise AssertionError(f"the serving process did not answer (exit code {self.process.poll()}):\n{log}")

    def __call__(self, requests):
        self.count += 1
        stem = os.path.join(self.directory, f"job{self.count}")
        arrays = {f"{i}/{k}": np.asarray(v) for i, r in enumerate(requests) for k, v in r.get("inputs", {}).items()}
        np.savez(stem + "_in.npz", **arrays)
        with open(stem + ".json", "w") as f:
            json.dump([{"kind": r["kind"], "path": r["path"], "signature": r["signature"],
                        "inputs": sorted(r.get("inputs", {}))} for r in requests], f)
        self.process.stdin.write(json.dumps({"requests": stem + ".json", "arrays": stem + "_in.npz",
                                             "out": stem + "_out.npz"}) + "\n")
        self.process.stdin.flush()
        self._answer()
        outputs = dict(np.load(stem + "_out.npz"))
        results = [{} for _ in requests]
        for key, value in outputs.items():
            index, name = key.split("/", 1)
            results[int(index)][name] = value
        return results

    def close(self):
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="session")
def project_free_server():
    directory = tempfile.mkdtemp(prefix="harness-serve-")
    server = ProjectFreeServer(directory)
    yield server
    server.close()


# ------------------------------------------------------------------ the harness per variant
@pytest.mark.parametrize("case", sorted(ALL_CASES))
def test_model_harness(case, tmp_path, project_free_server):
    preset, dataset, overrides, options = ALL_CASES[case]
    results = testing.check_model(preset, dataset, str(tmp_path), overrides=overrides, exporters=export,
                                  serve=project_free_server, raise_on_failure=False, **options)
    print(json.dumps({case: results, "seconds": results.seconds, "loss trends": results.trends}, indent=1))
    failed = {k: v for k, v in results.items() if not (v == "passed" or v.startswith("skipped: no"))}
    assert not failed, f"{preset}: {len(failed)} of {len(results)} checks failed:\n" + "\n".join(
        f"[{k}] {v}" for k, v in failed.items())


def test_every_registered_family_has_a_harness_case():
    families = set(zoo.presets.registry.families())
    missing = families - set(CASES)
    assert not missing, f"families without a model-harness case: {sorted(missing)} (add them to CASES)"
    assert not set(CASES) - families, f"harness cases of unregistered families: {sorted(set(CASES) - families)}"
    for family, (preset, _, _, _) in ALL_CASES.items():
        registered = zoo.presets.registry.preset(preset).family
        assert registered == family.split("_image")[0].split("_conditional")[0], (
            f"case {family} runs {preset}, a {registered} preset")
    for case, (preset, _, _, _) in CONDITIONAL_CASES.items():
        assert zoo.presets.registry.get(preset).num_classes is not None, f"{case}: {preset} is not class-conditional"
    # Every family with a class-conditional preset has a conditional case (one preset per family and builder).
    conditional = {(p["family"], zoo.presets.registry.preset(p["name"]).builder.__name__)
                   for p in zoo.list() if p.get("num_classes")}
    covered = {(zoo.presets.registry.preset(preset).family, zoo.presets.registry.preset(preset).builder.__name__)
               for preset, _, _, _ in CONDITIONAL_CASES.values()}
    assert conditional <= covered, f"class-conditional families without a harness case: {sorted(conditional - covered)}"
