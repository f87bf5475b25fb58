"""The one exception type for a user's mistake: the CLI prints its message on one line, exit code 2."""


class UserError(Exception):
    """A problem the user can fix (unknown name, bad value, missing file). Never a bug."""


def choices(names) -> str:
    """Format valid choices the same way in every message."""
    return ", ".join(sorted(names))
