"""``python -m sentsim`` runs the command line."""

import sys

from sentsim.cli import main

sys.exit(main())
