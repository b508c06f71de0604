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
