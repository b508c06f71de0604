"""Runs zoo.testing.smoke_check on every harness case under KERAS_BACKEND=jax (one process for all).

Usage: KERAS_BACKEND=jax python harness_jax.py CASES.json; prints one line
``HARNESS_JAX {"case", "ok", "error" | "loss", "backend", "seconds"}`` per case.
"""

import json
import os
import sys
import time
import traceback

assert os.environ.get("KERAS_BACKEND") == "jax"

import keras  # noqa: E402

from zoo import testing  # noqa: E402

assert keras.backend.backend() == "jax", keras.backend.backend()
with open(sys.argv[1]) as f:
    cases = json.load(f)
for case in cases:
    start = time.time()
    try:
        outcome = testing.smoke_check(case["preset"], case["dataset"], overrides=case["overrides"])
        line = {"case": case["case"], "ok": True, **outcome}
    except Exception as error:  # noqa: BLE001 (reported per case)
        line = {"case": case["case"], "ok": False, "backend": keras.backend.backend(),
                "error": f"{type(error).__name__}: {str(error)[:1500]}\n{traceback.format_exc()[-1500:]}"}
    line["seconds"] = round(time.time() - start, 1)
    print("HARNESS_JAX " + json.dumps(line), flush=True)
