"""The one exception type for a user's mistake.

Anything a user can get wrong (a missing folder, a value out of range, too few
images) raises `UserError` with a message that says what was wrong and what to
do. The CLI prints it as one line and exits 2; the dashboard shows it with
`st.error`. Anything else is a bug and keeps its traceback.
"""


class UserError(ValueError):
    """A clear, one-line explanation of a user's mistake."""
