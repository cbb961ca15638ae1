"""Issue 11: ERNet's recipe zooms and centre-crops as paper 003 section 3.1 says."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from Augmentor import Operations
from PIL import Image

from breastcam.augment.ernet import AugmentorStep, make_ernet


def _image(size=40):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (size, size, 3)).astype(np.uint8)
    img[:4] = 255  # a bright border that a centred crop removes
    return img


def test_centring_crop_is_the_first_augmentor_operation_and_crops_the_centre():
    step = AugmentorStep()
    centring = step.operations[0]
    assert isinstance(centring, Operations.CropPercentage)
    assert centring.centre and centring.probability == 1.0 and centring.percentage_area == 0.9
    step.operations = [centring]  # only the centring crop, applied to every image
    img = _image()
    out = step(img[None].astype(np.float32), seed=0)[0]
    pil = Image.fromarray(img)
    crop = pil.crop((2.0, 2.0, 38.0, 38.0)).resize((40, 40), Image.BILINEAR)  # 36 = floor(0.9 * 40)
    assert np.abs(out - np.asarray(crop, np.float32)).max() <= 1.0
    assert not np.array_equal(out, img.astype(np.float32))
    with pytest.raises(ValueError, match="centre_crop_area"):
        AugmentorStep(centre_crop_area=0.0)
    assert not any(isinstance(op, Operations.CropPercentage) and op.centre
                   for op in AugmentorStep(centre_crop_area=1.0).operations)


def test_zoom_is_part_of_the_geometric_step():
    # everything else as close to off as Augmentor allows; zoom alone still changes the batch
    images = tf.constant(np.stack([_image(), _image()[::-1]]).astype(np.float32))
    kw = dict(translation=0.0, rotation_factor=0.0, flip_probability=-1.0, crop_probability=-1.0, centre_crop_area=1.0)
    no_zoom = make_ernet(seed=3, zoom=0.0, **kw)(images).numpy()
    np.testing.assert_allclose(no_zoom, np.rint(images.numpy()), atol=1.0)
    zoomed = make_ernet(seed=3, zoom=0.3, **kw)(images).numpy()
    assert np.abs(zoomed - no_zoom).mean() > 5.0
