"""``python -m vqlens``: the same as the ``vqlens`` command."""

import sys

from vqlens.cli import main

sys.exit(main())
