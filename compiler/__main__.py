"""``python -m compiler`` is ``netc``."""

import sys

from .tools.cli import main

sys.exit(main())
