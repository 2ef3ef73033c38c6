"""Loading TensorFlow and Keras quietly, for the processes that need them (trainer, standby, evaluate).

TensorFlow's C++ start-up lines ("All log messages before absl::InitializeLog() ...", oneDNN and
CUDA notices) are written to file descriptor 2 while `import tensorflow` runs, before
TF_CPP_MIN_LOG_LEVEL takes effect, so no environment variable hides them. `load_keras` runs the
import with fd 2 pointed at a temporary file and shows that file only if the import fails.
"""

from __future__ import annotations

import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the later C++ INFO/WARNING/ERROR lines (e.g. cuInit)


def load_keras():
    """Import Keras (and its TensorFlow backend) without TensorFlow's native start-up lines; returns keras."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras

            if keras.backend.backend() == "tensorflow":
                import tensorflow  # noqa: F401  (its native start-up lines also land in `captured`)
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return keras
