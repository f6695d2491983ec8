"""``python -m mirrortwin``: the same command line as the ``mirrortwin`` script."""

import sys

from mirrortwin.cli import main

sys.exit(main())
