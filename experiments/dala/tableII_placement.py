"""Paper 001 Table ii: the attention module after ResNet50 stage 1, 2, 3 or 4.

    python experiments/dala/tableII_placement.py --data-dir DIR [--quick] [--out reports]

Reproduces it with experiment ``dala-placement`` (experiments/dala/*.yaml): the manifest of DIR is
checked against data_manifests/, split with the committed splits (or afresh with
--allow-partial / --quick), every model trained and evaluated, and this table's rows printed,
published beside reproduced; the full report is reports/dala-placement/index.html.
"""

import sys

from breastcam.reproduce.table_script import run_table


def main(argv=None) -> int:
    return run_table("dala-placement", "paper 001 Table II", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
