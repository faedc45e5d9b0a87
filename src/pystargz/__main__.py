"""``python -m pystargz``: the same as the ``pystargz`` command."""

import sys

from pystargz.cli import main

sys.exit(main())
