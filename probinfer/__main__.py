"""``python -m probinfer``: the same as the ``probinfer`` command."""

import sys

from probinfer.cli import main

sys.exit(main())
