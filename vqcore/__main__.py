"""``python -m vqcore ...``: the command line of :mod:`vqcore.cli`."""

import sys

from .cli import main

sys.exit(main())
