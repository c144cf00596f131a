"""``python -m edged``."""

import sys

from edged.cli import main

if __name__ == "__main__":  # not when a spawned child (the precision gate) imports it as __mp_main__
    sys.exit(main())
