"""The core layers and a FlowModel under KERAS_BACKEND=jax (a subprocess: the backend is per process)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_core_layers_and_one_training_step_under_jax():
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
    script = os.path.join(ROOT, "tests", "backends", "jax_smoke.py")
    result = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    assert "jax smoke test passed" in result.stdout
    assert "bad values refused under JAX" in result.stdout
    assert "lists and empty batches handled under JAX" in result.stdout
