"""A tiny study for the study-mode tests: the quickest experiment, shrunk further.

``ernet-depth`` with ``tinycnn`` in place of its ERNets (the study machinery is under test, not
the model: an ERNet-18 run costs ten times as much), 32 px, the 20 real BreakHis sample images,
fold 0: two runs (protocols ``ernet`` and ``patient``). The
``quick`` block is replaced in the loaded experiment dict; the plan records it, so ``--run`` and
``--collect`` in other processes use the same tiny settings.
"""

from __future__ import annotations

from breastcam.report import load_experiment


def make_tiny_experiment(epochs: int = 1) -> dict:
    exp = load_experiment("ernet-depth")
    exp["model_specs"] = {**exp["model_specs"], "tinycnn": {"model": "tinycnn", "options": {}}}
    exp["models"] = ["tinycnn"]
    exp["quick"] = {"max_images": 20, "image_size": 32, "epochs": epochs, "batch_size": 8,
                    "weights": None, "folds": [0], "models": ["tinycnn"]}
    return exp

