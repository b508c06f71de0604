"""benchmarks/train_throughput.py's mixed-precision part (issue 17, part 6: utilization in fp32 and in bf16)."""

import os
import sys
import types

import keras
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import train_throughput  # noqa: E402


def _tiny_args(**overrides):
    args = train_throughput.parse_args(["--height", "8", "--width", "8", "--levels", "2", "--steps_per_level", "1",
                                        "--hidden_channels", "8"])
    return types.SimpleNamespace(**{**vars(args), **overrides})


def test_the_bf16_model_computes_its_conditioners_in_bfloat16_and_restores_the_global_policy():
    args = _tiny_args()
    before = keras.config.dtype_policy().name
    bf16 = train_throughput.build_ours(args, "mixed_bfloat16")
    fp32 = train_throughput.build_ours(args)
    assert keras.config.dtype_policy().name == before
    convs = lambda model: [layer for layer in model._flatten_layers(recursive=True)  # noqa: E731
                           if isinstance(layer, keras.layers.Conv2D)]
    assert convs(bf16) and {layer.compute_dtype for layer in convs(bf16)} == {"bfloat16"}
    assert {layer.compute_dtype for layer in convs(fp32)} == {"float32"}
    assert {v.dtype for v in bf16.trainable_variables} == {"float32"}  # the weights stay float32


def test_matmul_peak_in_each_dtype_is_a_positive_rate():
    for dtype in (tf.float32, tf.bfloat16):
        assert train_throughput.matmul_peak(size=64, repeats=2, dtype=dtype) > 0


def test_bf16_lines_put_the_bf16_step_against_both_peaks():
    result = {"ours_median": 300.0, "ours_rounds": [290.0, 300.0, 310.0], "matmul_peaks": [200e9, 250e9],
              "mfu_ours": 0.33 * 300 / 250, "ours_loss": 8.05,
              "bf16": {"rounds": [600.0, 640.0], "median": 620.0, "loss": 8.06, "peaks": [900e9, 1000e9],
                       "peak": 1000e9, "units": ["avx512_bf16", "amx_bf16"], "mfu_own_peak": 0.33 * 620 / 1000,
                       "mfu_fp32_peak": 0.33 * 620 / 250}}
    text = "\n".join(train_throughput.bf16_lines(result, _tiny_args()))
    assert "bfloat16 units in /proc/cpuinfo: avx512_bf16, amx_bf16." in text
    assert ("| mixed_bfloat16 | 620.0 | 600, 640 | 2.07x | 1000 (largest of 2, range 900-1000) | 20.5% | 81.8% | "
            "8.060 |") in text
    assert "| float32 | 300.0 | 290, 300, 310 | 1.00x | 250 (largest of 2, range 200-250) | 39.6% | 39.6% |" in text
    result["bf16"]["units"] = []
    assert "none (bfloat16 is emulated: expect no gain)" in "\n".join(train_throughput.bf16_lines(result, _tiny_args()))
    del result["bf16"]
    assert train_throughput.bf16_lines(result, _tiny_args()) == []


def test_step_phases_times_each_phase_and_the_paragraph_reports_them():
    import numpy as np

    from zoo.training.data import epoch_dataset

    args = _tiny_args(batch_size=4, steps=2)
    model = train_throughput.build_ours(args)
    images = np.random.default_rng(0).integers(0, 256, size=(8, 8, 8, 3), dtype=np.uint8)
    model.fit(images, batch_size=4, epochs=1, verbose=0)
    batches = [tf.constant(images[:4]), tf.constant(images[4:])]
    phases = train_throughput.step_phases(model, batches, lambda: epoch_dataset(images, 0, 4, 0), rounds=2)
    assert set(phases) == {"fit", "bare step", "no optimizer", "forward"}
    for phase in phases.values():
        assert len(phase["ms"]) == 2 and all(ms > 0 for ms in phase["ms"])
    assert phases["bare step"]["ratio_to_bare"] == 1.0
    result = {"phases": {"fit": {"ms": [110.0, 112.0], "median_ms": 111.0, "ratio_to_bare": 1.05},
                         "bare step": {"ms": [106.0, 105.0], "median_ms": 105.5, "ratio_to_bare": 1.0},
                         "no optimizer": {"ms": [99.0, 100.0], "median_ms": 99.5, "ratio_to_bare": 0.94},
                         "forward": {"ms": [33.0, 34.0], "median_ms": 33.5, "ratio_to_bare": 0.32}},
              "flops_per_image": 0.33e9, "matmul_peak": 200e9}
    text = train_throughput.phases_paragraph(result, _tiny_args(batch_size=32, steps=20))
    assert "2 interleaved rounds" in text and "`fit` on zoo.train's input 111.0 ms (1.05x the bare step, 47.6% of" in text
    assert "Adam's update and the metrics take about 6% of the step" in text
    assert "`fit` and its input pipeline cost 5% over the bare step" in text
