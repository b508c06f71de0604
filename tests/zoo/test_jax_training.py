"""zoo.train on the JAX backend (no TensorFlow imported): data parallelism over two host devices and exact resume."""

import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))


def _env():
    env = dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2",
               PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return env


def test_zoo_train_under_jax_data_parallel_and_exact_resume(tmp_path):
    run = subprocess.run([sys.executable, os.path.join(HERE, "jax_training_check.py"), str(tmp_path)], env=_env(),
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(next(line for line in run.stdout.splitlines() if line.startswith("JAX_TRAINING "))[13:])
    assert result["backend"] == "jax" and result["devices"] == 2 and not result["tensorflow_imported"]
    # Two devices with half the per-replica batch: the same global batch, so the same run up to float rounding.
    assert result["replicas"] == [1, 2] and result["global_batch"] == [32, 32]
    np.testing.assert_allclose(result["loss_two"], result["loss_one"], rtol=1e-5)
    np.testing.assert_allclose(result["val_two"], result["val_one"], rtol=1e-5)
    assert result["weights_one_vs_two"] < 1e-5
    # Killed in epoch 2 after the step-12 checkpoint, resumed: bit-identical to the uninterrupted run.
    assert result["crashed"] and result["resumed_from_step"] == 12 and result["weights_resumed_vs_straight"] == 0.0
    assert result["ae_gmm_fitted"] and result["ae_samples_shape"] == [4, 8, 8, 1]  # post-hoc priors on JAX too
    assert result["files"] == ["best", "checkpoints", "final", "history.json"]  # no TensorBoard logs
    # A class-conditional preset trains from a named dataset's labels under data parallelism too.
    assert np.isfinite(result["conditional_val_loss"]) and result["conditional_sample_grid"]
    np.testing.assert_allclose(result["conditional_class_prior_sum"], 1.0, rtol=1e-6)
    assert "tensorboard=False" in result["refused"]["tensorboard"]
    assert "data_parallel" in result["refused"]["mirrored"]


def test_the_command_line_trains_under_jax_without_tensorflow(tmp_path):
    script = (
        "import importlib.abc, runpy, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'tensorflow_probability', 'tf_keras'):\n"
        "            raise ImportError(name + ' imported on the JAX path')\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.argv = ['zoo.train'] + sys.argv[1:]\n"
        "runpy.run_module('zoo.train', run_name='__main__')\n")
    out = tmp_path / "run"
    flags = ["--model", "nf_digits", "--dataset", "digits", "--epochs", "1", "--batch_size", "16", "--out", str(out),
             "--strategy", "data_parallel", "--sample_every", "0", "--num_examples", "256",
             '--overrides={"num_levels": 2, "steps_per_level": 1, "hidden_channels": 8}']
    run = subprocess.run([sys.executable, "-c", script, *flags], env=_env(), capture_output=True, text=True,
                         timeout=600, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "global batch 32 on 2 replica(s)" in run.stdout
    history = json.loads((out / "history.json").read_text())
    assert history["global_batch_size"] == 32 and np.isfinite(history["history"][0]["val_loss"])
    assert history["validation_examples"] == 296  # the 297 test digits, cut to a multiple of the 2 devices
    assert not (out / "saved_model").exists() and not (out / "logs").exists()
    refused = subprocess.run([sys.executable, "-c", script, *flags, "--saved_model", "--out", str(tmp_path / "r")],
                             env=_env(), capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert refused.returncode != 0 and "--saved_model needs TensorFlow" in refused.stderr


def test_the_gpu_training_benchmark_runs_without_tensorflow(tmp_path):
    # The script made for one H200 (JAX, NumPy, a Keras wheel, no TensorFlow), here on the CPU at a tiny size.
    run = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "benchmarks", "gpu_train.py"), "--model",
                          "nif_fmnist_small_64", "--steps", "5", "--warmup_steps", "1", "--batch_size", "8",
                          "--eval_examples", "32", "--out", str(tmp_path)], env=_env(), capture_output=True,
                         text=True, timeout=600, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads((tmp_path / "gpu_train.json").read_text())
    assert not report["tensorflow_imported"] and report["devices"] == 2 and report["strategy"] == "data_parallel"
    assert report["global_batch"] == 16 and report["images_per_second"] > 0 and report["train_flops_per_image"] > 0
    assert 0 < report["mfu_vs_measured_float32_matmul"] < 1.5 and np.isfinite(report["val_bits_per_dim"])
    doc = tmp_path / "BENCHMARKS.md"
    subprocess.run([sys.executable, os.path.join(REPO_ROOT, "benchmarks", "gpu_train.py"), "--write_doc",
                    str(tmp_path / "gpu_train.json"), "--doc", str(doc)], env=_env(), check=True, cwd=REPO_ROOT,
                   capture_output=True)
    assert "the GPU numbers are still to come" in doc.read_text()
