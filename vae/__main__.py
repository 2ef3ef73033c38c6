"""`python -m vae ...`: see vae/cli.py."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ INFO and its harmless ERROR lines

from .cli import main  # noqa: E402

sys.exit(main())
