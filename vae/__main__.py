"""`python -m vae ...`: see vae/cli.py."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ INFO and its harmless ERROR lines

from .cli import main  # noqa: E402

code = main()
if "tensorflow" in sys.modules:
    # Every file is written and closed by now; TensorFlow's own teardown at interpreter exit takes
    # about 2 s of CPU (bench/RESULTS.md), which a finished trainer need not spend.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0)
sys.exit(code)
