"""The one exception type for a user's mistake.

Anything a user can get wrong (a missing folder, a value out of range, too few
images) raises `UserError` with a message that says what was wrong and what to
do. The CLI prints it as one line and exits 2; the dashboard shows it with
`st.error`. Anything else is a bug and keeps its traceback.
"""

import errno
import sys


class UserError(ValueError):
    """A clear, one-line explanation of a user's mistake."""


def exit_code(fn, *args, **kwargs) -> int:
    """Call fn and return its exit code; a user's mistake, an interrupt or a failed disk prints one line
    `error: ...` on stderr instead of a traceback (exit 2, 130, 1). The CLI and the standby trainer use it."""
    try:
        return fn(*args, **kwargs)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a full disk, a read-only folder, a missing permission: say so, no traceback
        reason = "the disk is full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        print(f"error: {reason}" + (f": {e.filename}" if e.filename else f" ({e})"), file=sys.stderr)
        return 1
