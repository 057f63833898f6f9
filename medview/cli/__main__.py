"""``python -m medview.cli``."""

import sys

from medview.cli import main

if __name__ == "__main__":
    sys.exit(main())
