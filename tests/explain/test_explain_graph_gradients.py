"""The compiled CAM takes its gradient symbolically: only the head's backward pass is built, and
the maps equal those of an eager ``GradientTape``."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from breastcam.explain import get_cam

# ops of a backward pass through the layers below the CAM layer (conv, ReLU, BN, pooling); the
# head (GAP + Dense) has none of these
_BACKWARD_OPS = {"Conv2DBackpropFilter", "Conv2DBackpropInput", "FusedBatchNormGradV3", "ReluGrad",
                 "MaxPoolGrad"}


@pytest.mark.parametrize("method", ["gradcam", "gradcampp"])
def test_compiled_graph_builds_no_backward_pass_below_the_cam_layer(cnn, method):
    cam = get_cam(method, cnn, "features")
    graph = cam._compiled.get_concrete_function().graph
    types = {op.type for op in graph.get_operations()}
    assert not types & _BACKWARD_OPS, sorted(types & _BACKWARD_OPS)
    # and below the head there are convolutions, so the check can fail
    assert "Conv2D" in types


@pytest.mark.parametrize("method", ["gradcam", "gradcampp", "dtgradcam"])
def test_symbolic_gradient_maps_equal_the_eager_tape(cnn, cnn_images, method):
    compiled = get_cam(method, cnn, "features", batch_size=4)
    graph_maps = compiled(cnn_images, targets=[0, 1, 2, 0, 1])
    tf.config.run_functions_eagerly(True)
    try:
        eager = get_cam(method, cnn, "features", batch_size=4)
        eager_maps = eager(cnn_images, targets=[0, 1, 2, 0, 1])
    finally:
        tf.config.run_functions_eagerly(False)
    np.testing.assert_allclose(graph_maps, eager_maps, atol=1e-5)
    assert float(np.ptp(graph_maps)) > 0.5  # real maps, not all zeros
