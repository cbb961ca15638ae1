"""Which printed parameter count breastcam reproduces, with which configuration (issue 11).

One row per count printed by paper A (000 Table 7, 001 Table X) or paper B (003 Table 1). Each
row names the configuration breastcam builds for it and counts that configuration from a built
Keras graph (at 32 px: a convolution's parameter count does not depend on the input size), or
says what was tried and why nothing fits (``benchmarks/param_count_search.py`` is the search).
``breastcam models`` prints :func:`published_count_table`; tests assert every ✓ row.

Counting conventions: the papers count PyTorch's ``parameters()``. Keras' ResNet50 has 79,680
more (26,560 conv biases + 53,120 BatchNorm moving statistics), so DALAResNet50 rows compare
``count_params() - 79,680`` with the printed figure and show both. Rows marked ``pytorch`` count
:func:`breastcam.models.published_counts.torch_count` of a graph in PyTorch's layout.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras
import pandas as pd

from breastcam.models.published_counts import torch_count, torchvision_resnet
from breastcam.models.registry import build

KERAS_MINUS_TORCH_RESNET50 = 79_680  # conv biases 26,560 + BN moving statistics 53,120
SMALL = (32, 32, 3)
CHECK, CROSS = "✓", "✗"


@dataclasses.dataclass(frozen=True)
class CountCheck:
    """A printed count and breastcam's reproduction of it (or the reason there is none)."""

    model: str  # registry name of the paper's row
    classes: int
    published: int | None  # None: the paper prints no count (e.g. the placement ablation)
    source: str
    configuration: str  # what is built, or what was tried
    count: Callable[[], int] | None = None  # ours; None: nothing to build
    offset: int = 0  # expected ours - published (Keras' extra BN statistics and biases)
    round_to: int | None = None  # the paper prints millions with this many decimals


def _keras(name: str, classes: int, **options) -> Callable[[], int]:
    def count() -> int:
        model = build(name, classes, input_shape=SMALL, **options)
        n = int(model.count_params())
        keras.backend.clear_session()
        return n

    return count


def _torch_resnet(depth: int) -> Callable[[], int]:
    def count() -> int:
        n = torch_count(torchvision_resnet(depth, include_top=True, classes=1000, input_shape=SMALL))
        keras.backend.clear_session()
        return n

    return count


def vit_1024x4(classes: int = 2, input_shape=(224, 224, 3)) -> keras.Model:
    """The ViT whose count equals paper A's "ViT" (51,375,106 for 2 classes; counting only).

    Patch 16, width 1024, 4 encoder blocks (MLP 4,096; 16 heads - heads do not change the count),
    a learned position embedding for the 196 patch tokens, no class token, no final LayerNorm,
    mean of the tokens -> Dense. The only exact fit of 18,432 ViT layouts searched.
    """
    import keras_hub  # keras-hub's layers count exactly as timm's (q/k/v/out biases, 2 LNs)

    patch, width = 16, 1024
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(width, patch, strides=patch)(inputs)
    x = keras.layers.Reshape((-1, width))(x)
    x = x + keras_hub.layers.PositionEmbedding(sequence_length=(input_shape[0] // patch) ** 2)(x)
    for _ in range(4):
        x = keras_hub.layers.TransformerEncoder(4096, 16, normalize_first=True)(x)
    x = keras.layers.Dense(classes)(keras.layers.GlobalAveragePooling1D()(x))
    return keras.Model(inputs, x, name="vit_1024x4")


def _vit(classes: int) -> Callable[[], int]:
    def count() -> int:
        n = int(vit_1024x4(classes).count_params())
        keras.backend.clear_session()
        return n

    return count


_T7 = "paper 000 Table 7 (= 001 Table IX)"
_TX = "paper 001 Table X"
_T1 = "paper 003 Table 1 (printed in millions)"
_SEARCH = "benchmarks/param_count_search.py"

CHECKS: tuple[CountCheck, ...] = (
    CountCheck("dalaresnet50", 2, 25_611_842, _T7, "reduction=4 (dala-breakhis, -placement, -cam)",
               _keras("dalaresnet50", 2, reduction=4), KERAS_MINUS_TORCH_RESNET50),
    CountCheck("dalaresnet50", 3, 24_040_643, _TX + " Mini-DDSM", "reduction=16 (dala-miniddsm)",
               _keras("dalaresnet50", 3, reduction=16), KERAS_MINUS_TORCH_RESNET50),
    CountCheck("dalaresnet50", 4, 24_042_692, _TX + " BACH", "reduction=16 (dala-bach)",
               _keras("dalaresnet50", 4, reduction=16), KERAS_MINUS_TORCH_RESNET50),
    *(
        CountCheck("dalaresnet50", 2, None, "paper 001 Table II prints no count",
                   f"attention_stage={k}, reduction=4 (dala-placement: the r of the BreakHis count)",
                   _keras("dalaresnet50", 2, reduction=4, attention_stage=k), KERAS_MINUS_TORCH_RESNET50)
        for k in (1, 2, 3)
    ),
    CountCheck("resnet50", 2, 21_797_672, _T7,
               "pytorch: torchvision ResNet-34 with its 1000-class fc and no other head - the printed "
               "'ResNet50' count is ResNet-34's (breastcam's resnet50 stays a ResNet-50, as the papers name it)",
               _torch_resnet(34)),
    CountCheck("resnet50", 3, 21_797_672, _TX + " Mini-DDSM",
               "pytorch: the same ResNet-34 figure printed again (a class-count-independent number)",
               _torch_resnet(34)),
    CountCheck("resnet50", 4, 21_805_868, _TX + " BACH",
               f"not reproduced: = the 2-class figure + 8,196 (4 x 2,049, a Dense(2048 -> 4)); 0 of 2,720 "
               f"torchvision ResNet/DenseNet + head layouts fit ({_SEARCH})"),
    CountCheck("densenet121", 2, 9_028_970, _T7,
               "not reproduced: +513 per class means a 512-wide layer before the classifier, but none of 2,720 "
               "layouts (torchvision DenseNet-121 with/without its fc, 0-2 hidden Dense of 64-4,096, BN, "
               f"avg or avg+max pooling) gives the constant part ({_SEARCH})"),
    CountCheck("vgg16", 2, 134_268_738, _T7, "head='fc' (Flatten -> fc1 -> fc2), 224 px",
               lambda: _at224("vgg16", 2)),
    CountCheck("vgg16", 3, 134_272_835, _TX + " Mini-DDSM", "head='fc', 224 px", lambda: _at224("vgg16", 3)),
    CountCheck("vgg16", 4, 134_276_934, _TX + " BACH",
               "head='fc', 224 px: ours is 134,276,932 (= 2-class + 2 x 4,097); the printed figure is 2 more",
               lambda: _at224("vgg16", 4)),
    CountCheck("vgg16_inception", 2, 38_139_938, _T7,
               "not reproduced: +4,097 per class (a 4,096-wide fc) fits, the constant part fits none of 864 "
               "VGG16 block4/5 + naive/projected Inception + BN + avg/flatten layouts "
               f"({_SEARCH}; Saini & Susan give no filter counts)"),
    CountCheck("vit_b16", 2, 51_375_106, _T7,
               "keras-hub layers: ViT patch 16, width 1024, 4 blocks, MLP 4,096, no class token, no final "
               "LayerNorm (vit_1024x4; the only exact fit of 18,432 layouts) - not ViT-B/16, which breastcam "
               "trains as the paper names it", _vit(2)),
    CountCheck("vit_b16", 3, 51_376_131, _TX + " Mini-DDSM", "vit_1024x4, 3 classes", _vit(3)),
    CountCheck("vit_b16", 4, 51_385_352, _TX + " BACH",
               "not reproduced: vit_1024x4 gives 51,377,156; the printed figure is 8,196 more (as ResNet50's BACH row)",
               _vit(4)),
    *(
        CountCheck("seresnet50", k, published, source,
                   "Keras SE-ResNet-50 (squeeze-excitation ratio 16): as ResNet-50, Keras counts the BN "
                   "moving statistics and conv biases PyTorch does not (+79,680)",
                   _keras("seresnet50", k), KERAS_MINUS_TORCH_RESNET50)
        for k, published, source in ((2, 27_073_090, _T7), (3, 27_073_603, _TX + " Mini-DDSM"),
                                     (4, 27_074_116, _TX + " BACH"))
    ),
    CountCheck("swin", 2, 86_745_274, _T7, "keras-hub Swin-B (patch 4, window 7), 224 px: exact",
               lambda: _at224("swin", 2)),
    CountCheck("swin", 3, 86_746_299, _TX + " Mini-DDSM", "keras-hub Swin-B, 224 px: exact",
               lambda: _at224("swin", 3)),
    CountCheck("swin", 4, 86_753_470, _TX + " BACH",
               "not reproduced: keras-hub Swin-B gives 86,747,324 (= 2-class + 2 x 1,025); the printed figure "
               "is the 2-class one + 8,196, as ResNet50's and ViT's BACH rows", lambda: _at224("swin", 4)),
    *(
        CountCheck("dinov2_b14", k, published, source,
                   "keras-hub DINOv2-B/14 at 224 px: the per-class part (+769) is exact; ours has 197,376 = "
                   "257 x 768 more, one 768-vector per token of a 224-px image (256 patches + class token) "
                   "that the printed figure does not count", lambda k=k: _at224("dinov2_b14", k), 197_376)
        for k, published, source in ((2, 86_582_018, _T7), (3, 86_582_787, _TX + " Mini-DDSM"),
                                     (4, 86_583_556, _TX + " BACH"))
    ),
    CountCheck("ernet50", 2, 25_560_000, _T1, "pytorch: torchvision ResNet-50 with its 1000-class fc, 25.557 M",
               _torch_resnet(50), round_to=2),
    CountCheck("ernet34", 2, 21_700_000, _T1, "pytorch: torchvision ResNet-34 (1000-class fc) is 21.80 M, not 21.70",
               _torch_resnet(34), round_to=2),
    CountCheck("ernet18", 2, 11_600_000, _T1, "pytorch: torchvision ResNet-18 (1000-class fc) is 11.69 M, 11.7 rounded",
               _torch_resnet(18), round_to=1),
    CountCheck("ernet101", 2, 45_600_000, _T1, "pytorch: torchvision ResNet-101 (1000-class fc) is 44.55 M, not 45.6",
               _torch_resnet(101), round_to=1),
    CountCheck("ernet50", 2, None, "breastcam's ERNet-50, 2 classes",
               "er_connection='weighted' (default, count-consistent: ResNet-50 + 0.2 %)",
               _keras("ernet50", 2)),
    CountCheck("ernet50", 2, None, "breastcam's ERNet-50, 2 classes",
               "er_connection='paper' (eq. 10 literally: 1x1 + two 3x3 convolutions on every ER path)",
               _keras("ernet50", 2, er_connection="paper")),
)


def _at224(name: str, classes: int) -> int:
    # VGG's Flatten head depends on the input size: the printed counts are at 224 px
    n = int(build(name, classes, input_shape=(224, 224, 3)).count_params())
    keras.backend.clear_session()
    return n


def check_row(check: CountCheck) -> dict:
    """Build and compare one row; ``match`` is ✓, ✗ or empty (nothing printed or built)."""
    ours = check.count() if check.count is not None else None
    match = ""
    if ours is not None and check.published is not None:
        if check.round_to is not None:
            ok = round((ours - check.offset) / 1e6, check.round_to) == round(check.published / 1e6, check.round_to)
        else:
            ok = ours - check.offset == check.published
        match = CHECK if ok else CROSS
    elif check.published is not None:
        match = CROSS
    return {
        "model": check.model,
        "classes": check.classes,
        "published": check.published,
        "ours": ours,
        "offset": check.offset or None,
        "match": match,
        "configuration": check.configuration,
        "source": check.source,
    }


def published_count_table(models: list[str] | None = None, *, skip_large: bool = False) -> pd.DataFrame:
    """One row per :data:`CHECKS` entry (of ``models`` if given), built and compared.

    ``skip_large`` leaves out rows that build a 224-px VGG16 (134 M parameters).
    """
    rows = []
    for check in CHECKS:
        if models is not None and check.model not in models:
            continue
        if skip_large and check.model == "vgg16":
            continue
        rows.append(check_row(check))
    table = pd.DataFrame(rows)
    if rows:
        table = table.astype({c: "Int64" for c in ("published", "ours", "offset")})
    return table
