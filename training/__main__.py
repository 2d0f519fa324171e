"""`python -m training`: fine-tune an ovmlv model (see training/train.py)."""

import sys

from training.train import main

if __name__ == "__main__":
    sys.exit(main())
