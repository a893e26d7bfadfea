"""``python -m nirjax.cli``: the ``nirjax`` command."""

import sys

from . import main

sys.exit(main())
