import sys

from breastcam.cli import main

sys.exit(main())
