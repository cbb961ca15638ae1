"""Paper 001 Table viii: Mini-DDSM, 3 classes, 9 models (accuracy, F1, IBA, G-mean).

    python experiments/dala/tableVIII_miniddsm.py --data-dir DIR [--quick] [--out reports]

Reproduces it with experiment ``dala-miniddsm`` (experiments/dala/*.yaml): the manifest of DIR is
checked against data_manifests/, split with the committed splits (or afresh with
--allow-partial / --quick), every model trained and evaluated, and this table's rows printed,
published beside reproduced; the full report is reports/dala-miniddsm/index.html.
"""

import sys

from breastcam.reproduce.table_script import run_table


def main(argv=None) -> int:
    return run_table("dala-miniddsm", "paper 001 Table VIII", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
