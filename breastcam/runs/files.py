"""The names of a run directory's files: the one place that spells them (docs/ARCHITECTURE.md).

Written by :mod:`breastcam.train`, read through :class:`breastcam.runs.Run`.
"""

CONFIG = "config.yaml"  # the resolved run config
SPLIT = "split.csv"  # the manifest rows the run trained on (train/val), with their split
HISTORY = "history.csv"  # Keras CSVLogger
TIMING = "timing.json"  # seconds per epoch, to the best epoch, in total
BEST = "best.keras"  # the best-validation checkpoint: the run's model
LAST_WEIGHTS = "last.weights.h5"  # weights after the last epoch
INFO = "run_info.json"  # class names, preprocessing, precision, skipped images
STATUS = "status.json"  # {"state": "finished", ...} once training ended
STAIN = "stain.json"  # the fitted stain normaliser (when data.stain is set)
CALIBRATION = "calibration.json"  # temperature and conformal threshold (breastcam calibrate)
BACKUP = "backup"  # BackupAndRestore folder while the run is unfinished
EXPORT = "export"  # default folder of `breastcam export`

#: What ``breastcam export --format`` writes (breastcam.export writes each).
EXPORT_FORMATS = ("savedmodel", "keras", "onnx", "litert")
