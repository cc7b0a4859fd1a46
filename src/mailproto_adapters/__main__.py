"""``python -m mailproto_adapters``: the ``mailproto`` command."""

import sys

from .cli import main

sys.exit(main())
