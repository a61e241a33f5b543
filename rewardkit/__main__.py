"""``python -m rewardkit``: the ``rewardkit`` command."""

import sys

from .cli import main

sys.exit(main())
