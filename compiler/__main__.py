"""``python -m compiler`` is ``netc``."""

import sys

from .cli import main

sys.exit(main())
