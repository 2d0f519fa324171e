"""``python -m training.convert charades|csv ...``: see ``training.data.convert``."""

import sys

from training.data.convert import main

if __name__ == "__main__":
    sys.exit(main())
