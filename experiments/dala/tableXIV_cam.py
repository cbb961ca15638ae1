"""Paper 001 Table xiv: Grad-CAM, Score-CAM, Eigen-CAM and DT Grad-CAM against lesion masks.

    python experiments/dala/tableXIV_cam.py --data-dir DIR [--quick] [--out reports]

Reproduces it with experiment ``dala-cam`` (experiments/dala/*.yaml): the manifest of DIR is
checked against data_manifests/, split with the committed splits (or afresh with
--allow-partial / --quick), every model trained and evaluated, and this table's rows printed,
published beside reproduced; the full report is reports/dala-cam/index.html.
"""

import sys

from breastcam.reproduce.table_script import run_table


def main(argv=None) -> int:
    return run_table("dala-cam", "paper 001 Table XIV", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
