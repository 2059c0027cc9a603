"""``python -m trajsim`` is the ``trajsim`` command."""

import sys

from .cli import main

sys.exit(main())
