"""Paper 001 Table xi: BreakHis per magnification: sensitivity, specificity, PPV, NPV, AUC.

    python experiments/dala/tableXI_breakhis.py --data-dir DIR [--quick] [--out reports]

Reproduces it with experiment ``dala-breakhis`` (experiments/dala/*.yaml): the manifest of DIR is
checked against data_manifests/, split with the committed splits (or afresh with
--allow-partial / --quick), every model trained and evaluated, and this table's rows printed,
published beside reproduced; the full report is reports/dala-breakhis/index.html.
"""

import sys

from breastcam.reproduce.table_script import run_table


def main(argv=None) -> int:
    return run_table("dala-breakhis", "paper 001 Table XI", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
