"""The BackupAndRestore backup of an epoch is taken after every other callback wrote that epoch,
so a run killed between the two redoes the epoch instead of missing its history row."""

import json

import keras
import numpy as np

from breastcam.train.callbacks import BackupLast, truncate_history


class _Probe(keras.callbacks.Callback):
    """Records, at each epoch end, which epoch count the backup says is done."""

    def __init__(self, metadata):
        super().__init__()
        self.metadata, self.seen = metadata, []

    def on_epoch_end(self, epoch, logs=None):
        done = json.loads(self.metadata.read_text())["epoch"] if self.metadata.exists() else 0
        self.seen.append((epoch, done, self.history_rows()))

    def history_rows(self):
        path = self.metadata.parents[1] / "history.csv"
        return max(len(path.read_text().splitlines()) - 1, 0) if path.exists() else 0


def test_backup_is_taken_after_the_history_row(tmp_path):
    backup = BackupLast(str(tmp_path / "backup"), delete_checkpoint=False)
    probe = _Probe(tmp_path / "backup" / "training_metadata.json")
    logger = keras.callbacks.CSVLogger(str(tmp_path / "history.csv"), append=True)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 1), "float32")
    model.fit(x, y, epochs=3, verbose=0, callbacks=[backup, logger, probe, backup.last])
    # at the end of epoch e (after CSVLogger wrote row e) the backup still says e epochs done
    assert probe.seen == [(0, 0, 1), (1, 1, 2), (2, 2, 3)]
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == 3


def test_truncate_history_accepts_the_empty_file_of_a_run_killed_in_epoch_1(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("")  # CSVLogger opens it at train begin; the first row comes at epoch end
    truncate_history(path, 0)
    assert path.read_text() == ""
