"""summary.py: analytic GFLOPs and the size table / `breastcam models` CLI."""

from __future__ import annotations

import keras

from breastcam.cli import main
from breastcam.models.summary import count_flops, size_table


def test_models_summary_flops_are_twice_the_macs():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8*8 positions * 3*3*3*4 MACs
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)  # 4*4 * 3*3*4
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(5)(x)  # 4*5
    model = keras.Model(inputs, x)
    macs = 64 * 108 + 16 * 36 + 20
    assert abs(count_flops(model) - 2 * macs / 1e9) < 1e-15


def test_models_summary_table_and_cli(capsys):
    table = size_table(["vgg16_inception"], flops=False, input_size=32)
    row = table.iloc[0]
    assert row["model"] == "vgg16_inception" and row["cam_layer"] == "inception_out"
    assert row["published_params"] == 38_139_938
    assert row["difference"] == row["params_published_classes"] - 38_139_938
    assert main(["models", "--names", "vgg16_inception", "--input-size", "32", "--format", "csv", "--no-flops"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("model,paper,input,cam_layer")
    assert "vgg16_inception,A,32x32,inception_out" in out
