"""Paper 001 Table IV: BACH images per class (400 microscopy images, 100 per class).

    python experiments/dala/tableIV_bach_counts.py --data-dir DIR [--quick] [--out reports]

Reproduces it with experiment ``dala-data`` (experiments/dala/*.yaml): the manifest of DIR is
checked against data_manifests/, split with the committed splits (or afresh with
--allow-partial / --quick), every model trained and evaluated, and this table's rows printed,
published beside reproduced; the full report is reports/dala-data/index.html.
"""

import sys

from breastcam.reproduce.table_script import run_table


def main(argv=None) -> int:
    return run_table("dala-data", "paper 001 Table IV", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
