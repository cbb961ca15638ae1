"""Search for configurations that give paper A's / paper B's printed parameter counts exactly.

Run: ``python benchmarks/param_count_search.py``. It prints, for every printed count, each
candidate configuration whose count equals it, and how many candidates were tried. The counts
use PyTorch's convention (what papers A and B used: ``sum(p.numel() for p in
model.parameters())`` - no BatchNorm moving statistics, no conv biases in torchvision's CNNs).

Candidates, per published model:

- torchvision ResNet-18/34/50/101 and DenseNet-121 with and without their 1000-class ImageNet
  classifier, followed by a head of 0, 1 or 2 hidden Dense layers (widths below) and the
  classifier, with or without a BatchNorm1d after each hidden layer, on average-pooled or
  average+max-concatenated features;
- VGG16 convolutions up to block4/block5 + a naive or projected Inception module (filters from
  GoogLeNet's modules) + global pooling or flatten + Dense(4096) + classifier;
- ViTs: width 192-1024, depth 1-24, MLP ratio 2/3/4 or 4096, patch 8/14/16/32 at 224 px, with and
  without class token, final LayerNorm and a 1024-wide pre-logits layer.

The backbone counts are taken from Keras graphs built at 32 px (the count does not depend on the
input size for convolutions) and converted to PyTorch's convention by
:func:`breastcam.models.published_counts.torch_count`; the ViT counts are analytic.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from breastcam.models.published_counts import (  # noqa: E402
    TORCHVISION,
    torch_count,
    torchvision_resnet,
    vit_count,
)

WIDTHS = (64, 128, 256, 512, 768, 1000, 1024, 2048, 4096)
TARGETS = {  # (model, classes): printed count
    ("resnet50", 2): 21_797_672,
    ("resnet50", 4): 21_805_868,
    ("densenet121", 2): 9_028_970,
    ("vgg16_inception", 2): 38_139_938,
    ("vit_b16", 2): 51_375_106,
}


def _heads(features: int, classes: int):
    """(description, count) of every head on ``features`` pooled features."""
    yield "linear", features * classes + classes
    for bn in (False, True):
        for h1 in WIDTHS:
            one = features * h1 + h1 + (2 * h1 if bn else 0)
            yield f"{features}->{h1}{'+BN' if bn else ''}->c", one + h1 * classes + classes
            for h2 in WIDTHS:
                two = one + h1 * h2 + h2 + (2 * h2 if bn else 0)
                yield f"{features}->{h1}->{h2}{'+BN' if bn else ''}->c", two + h2 * classes + classes


def cnn_candidates(classes: int):
    backbones = {}
    for depth in (18, 34, 50, 101):
        model = torchvision_resnet(depth, include_top=False, input_shape=(32, 32, 3))
        backbones[f"torchvision resnet{depth}"] = (torch_count(model), TORCHVISION[f"resnet{depth}"]["features"])
    dense = keras.applications.DenseNet121(include_top=False, weights=None, input_shape=(32, 32, 3))
    backbones["densenet121"] = (torch_count(dense), 1024)
    for name, (count, features) in backbones.items():
        for top in (False, True):
            base = count + (features * 1000 + 1000 if top else 0)
            feats = 1000 if top else features
            if top:  # the ImageNet model as it is, its 1000-way fc the only classifier
                yield f"{name} +1000-class fc, no other head", base
            for pooled in ((feats,) if top else (feats, 2 * feats)):
                for head, n in _heads(pooled, classes):
                    yield f"{name}{' +1000-class fc' if top else ''}, pooled {pooled}, head {head}", base + n


def vgg_inception_candidates(classes: int):
    # VGG16 conv blocks (biases, PyTorch counts them too) + one inception module + Dense(4096)
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    per_block = {}
    for layer in vgg.layers:
        if layer.weights:
            block = int(layer.name[5])
            per_block[block] = per_block.get(block, 0) + layer.count_params()
    modules = [(64, 128, 32), (128, 192, 96), (192, 208, 48), (160, 224, 64), (128, 256, 64),
               (112, 288, 64), (256, 320, 128), (384, 384, 128), (64, 64, 64), (128, 128, 128),
               (256, 256, 256), (512, 512, 512)]
    for blocks, mod, proj, bn, pool in itertools.product((4, 5), modules, (None, 32, 64, 128), (0, 2, 4), ("avg", "flatten7", "flatten14")):
        base = sum(per_block[b] for b in range(1, blocks + 1))
        cin = 512
        f1, f3, f5 = mod
        inc = cin * f1 + f1 + 9 * cin * f3 + f3 + 25 * cin * f5 + f5
        pool_ch = cin if proj is None else proj
        inc += 0 if proj is None else cin * proj + proj
        channels = f1 + f3 + f5 + pool_ch
        spatial = {"avg": 1, "flatten7": 49, "flatten14": 196}[pool]
        features = channels * spatial
        count = base + inc + bn * channels + features * 4096 + 4096 + 4096 * classes + classes
        yield f"vgg16 blocks1-{blocks} + inception{mod} pool_proj={proj} BNx{bn} {pool} -> 4096 -> c", count


def vit_candidates(classes: int):
    for width, depth, mlp, patch, cls, final_ln, pre in itertools.product(
        (192, 256, 384, 512, 768, 1024), range(1, 25), (2, 3, 4, "4096"), (8, 14, 16, 32),
        (True, False), (True, False), (None, 1024),
    ):
        m = 4096 if mlp == "4096" else mlp * width
        count = vit_count(width=width, depth=depth, mlp=m, patch=patch, image=224, cls_token=cls,
                          final_norm=final_ln, pre_logits=pre, classes=classes)
        yield (f"ViT width {width} depth {depth} mlp {m} patch {patch} cls_token={cls} "
               f"final_norm={final_ln} pre_logits={pre}"), count


def main() -> int:
    searches = {"resnet50": cnn_candidates, "densenet121": cnn_candidates,
                "vgg16_inception": vgg_inception_candidates, "vit_b16": vit_candidates}
    for (model, classes), target in TARGETS.items():
        tried, fits = 0, []
        for desc, count in searches[model](classes):
            tried += 1
            if count == target:
                fits.append(desc)
        print(f"{model} ({classes} classes) printed {target:,}: {len(fits)} exact fit(s) of {tried:,} tried")
        for desc in fits:
            print(f"    {desc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
