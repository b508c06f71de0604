"""MultiWorkerMirroredStrategy for real: two worker processes on localhost ports, TF_CONFIG, kill and resume."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np

import zoo

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGS = ["--model", "nf_digits", "--dataset", "digits", "--epochs", "2", "--num_examples", "512",
         "--sample_every", "0", "--saved_model=false", "--checkpoint_every", "4", "--resume",
         '--overrides={"num_levels": 2, "steps_per_level": 1, "hidden_channels": 8}']


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _env(**extra):
    return dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow",
                CUDA_VISIBLE_DEVICES="", **extra)


def _workers(out, batch_size=16):
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    processes = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "zoo.train", *FLAGS, "--strategy", "multi_worker", "--batch_size", str(batch_size),
             "--out", str(out)], env=_env(TF_CONFIG=config), cwd=REPO_ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    return processes


def _finish(processes, timeout=600):
    outputs = [p.communicate(timeout=timeout) for p in processes]
    for p, (stdout, stderr) in zip(processes, outputs):
        assert p.returncode == 0, stderr[-4000:]
    return [stdout for stdout, _ in outputs]


def _weights(out):
    return zoo.get(str(out / "final")).get_weights()


def test_two_workers_train_like_one_process_and_resume_after_a_kill(tmp_path):
    single = subprocess.run([sys.executable, "-m", "zoo.train", *FLAGS, "--batch_size", "32", "--out",
                             str(tmp_path / "single")], env=_env(), cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=600)
    assert single.returncode == 0, single.stderr[-4000:]

    processes = _workers(tmp_path / "two")
    stdout = _finish(processes)
    assert all("global batch 32 on 2 replica(s)" in s for s in stdout), stdout
    for a, b in zip(_weights(tmp_path / "single"), _weights(tmp_path / "two")):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)  # same global batch: the same run up to rounding
    history = json.loads((tmp_path / "two" / "history.json").read_text())
    assert history["arguments"]["replicas"] == 2 and history["global_batch_size"] == 32
    # Only the chief writes: one checkpoint series, no staging folders left by the other worker.
    assert not [n for n in os.listdir(tmp_path / "two") if "staging" in n]
    assert not [n for n in os.listdir(tmp_path / "two" / "checkpoints") if "staging" in n]
    # TensorBoard's event files name the writing process: all of them are the chief's (worker 0).
    events = [n for _, _, names in os.walk(tmp_path / "two" / "logs") for n in names if n.startswith("events.")]
    assert events and all(f".{processes[0].pid}." in n for n in events), (processes[0].pid, events)

    # Kill a worker mid-run (the other then waits on a collective: stop it too), restart both with --resume.
    out = tmp_path / "killed"
    processes = _workers(out)
    pointer, deadline = out / "checkpoints" / "latest", time.time() + 300
    while time.time() < deadline and not (pointer.exists() and pointer.read_text().strip() >= "ckpt-000000008"):
        time.sleep(0.2)
    assert pointer.exists(), "no checkpoint before the deadline"
    processes[1].send_signal(signal.SIGKILL)
    processes[0].send_signal(signal.SIGKILL)
    for p in processes:
        p.wait(timeout=60)
    killed_at = pointer.read_text().strip()
    assert killed_at < "ckpt-000000032", f"the run finished before it was killed ({killed_at})"
    _finish(_workers(out))
    resumed = json.loads((out / "history.json").read_text())
    assert resumed["resumed_from_step"] >= 8
    for a, b in zip(_weights(tmp_path / "two"), _weights(out)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
