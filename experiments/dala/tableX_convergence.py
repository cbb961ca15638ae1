"""Paper 001 Table x: convergence time of the models on BACH and Mini-DDSM.

    python experiments/dala/tableX_convergence.py --data-dir DIR [--quick] [--out reports]

Reproduces it with experiment ``dala-params`` (experiments/dala/*.yaml): the manifest of DIR is
checked against data_manifests/, split with the committed splits (or afresh with
--allow-partial / --quick), every model trained and evaluated, and this table's rows printed,
published beside reproduced; the full report is reports/dala-params/index.html.
"""

import sys

from breastcam.reproduce.table_script import run_table


def main(argv=None) -> int:
    return run_table("dala-params", "paper 001 Table X", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
