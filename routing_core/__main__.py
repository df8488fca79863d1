"""`python -m routing_core` runs the `routing-core` command line."""

import sys

from routing_core.cli import main

sys.exit(main())
