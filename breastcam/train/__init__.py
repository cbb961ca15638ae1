"""Training engine: run configs, ``model.fit`` on tf.data, resumable and repeated runs."""

from breastcam.train.config import load_config, resolve_config
from breastcam.train.repeat import repeat_configs, run_repeated
from breastcam.train.run import run

__all__ = ["load_config", "resolve_config", "repeat_configs", "run", "run_repeated"]
