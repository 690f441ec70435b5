"""Errors that end a run with exit code 1 and one line on stderr saying what to do."""


class UserError(Exception):
    """Bad input or an unreachable dependency. The message is shown to the user as is."""
