"""``python -m disagree.cli``."""

import sys

from disagree.cli import main

sys.exit(main())
