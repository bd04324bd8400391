"""The one exception type the CLI turns into a short message and a non-zero exit."""


class ChurnError(Exception):
    """A problem the user can fix: the message names it and says how."""
