"""Paper 001 Table xii: BACH: sensitivity, specificity, PPV, NPV, AUC.

    python experiments/dala/tableXII_bach.py --data-dir DIR [--quick] [--out reports]

Reproduces it with experiment ``dala-bach`` (experiments/dala/*.yaml): the manifest of DIR is
checked against data_manifests/, split with the committed splits (or afresh with
--allow-partial / --quick), every model trained and evaluated, and this table's rows printed,
published beside reproduced; the full report is reports/dala-bach/index.html.
"""

import sys

from breastcam.reproduce.table_script import run_table


def main(argv=None) -> int:
    return run_table("dala-bach", "paper 001 Table XII", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
