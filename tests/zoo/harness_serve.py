"""Serves exported SavedModels and LiteRT samplers with TensorFlow alone, for the model harness.

Started once by tests/zoo/test_model_harness.py (per test process) and fed
requests until stdin closes. Importing any module of the project (layers,
zoo, export) is blocked, so a SavedModel that needs project code fails here.

Protocol, one JSON line per request on stdin: ``{"requests": REQUESTS.json,
"arrays": IN.npz, "out": OUT.npz}``; REQUESTS.json lists ``{"kind":
"saved_model" | "tflite" | "inputs", "path", "signature", "inputs": [names]}``
and IN.npz holds request ``i``'s input ``name`` as ``"i/name"``. Outputs go
to OUT.npz as ``"i/name"``; the answer is one line ``HARNESS_SERVE {"ok":
true}`` or ``HARNESS_SERVE {"ok": false, "error": ...}`` on stdout.
"""

import importlib.abc
import json
import sys
import traceback


class _BlockProject(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("layers", "zoo", "export"):
            raise ImportError(f"project module '{name}' imported while serving")
        return None


sys.meta_path.insert(0, _BlockProject())

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)  # small calls; the test processes share the cores
tf.config.threading.set_inter_op_parallelism_threads(1)
saved_models = {}


def answer(**message):
    print("HARNESS_SERVE " + json.dumps(message), flush=True)


def run(request, inputs):
    kind, path, signature = request["kind"], request["path"], request["signature"]
    if kind == "tflite":
        runner = Interpreter(model_path=path, num_threads=1).get_signature_runner(signature)
        return {k: np.asarray(v) for k, v in runner(**inputs).items()}
    if path not in saved_models:
        saved_models[path] = tf.saved_model.load(path)
    function = saved_models[path].signatures[signature]
    if kind == "inputs":
        return {"names": np.array(sorted(function.structured_input_signature[1]))}
    return {k: v.numpy() for k, v in function(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


answer(ok=True, ready=True)
for line in sys.stdin:
    if not line.strip():
        continue
    try:
        job = json.loads(line)
        with open(job["requests"]) as f:
            requests = json.load(f)
        arrays = dict(np.load(job["arrays"]))
        outputs = {}
        for i, request in enumerate(requests):
            inputs = {name: arrays[f"{i}/{name}"] for name in request["inputs"]}
            outputs.update({f"{i}/{k}": v for k, v in run(request, inputs).items()})
        assert not [m for m in sys.modules if m.split(".")[0] in ("layers", "zoo", "export")]
        np.savez(job["out"], **outputs)
        answer(ok=True)
    except Exception:  # noqa: BLE001 (the error goes back to the test)
        answer(ok=False, error=traceback.format_exc()[-4000:])
