"""User-facing errors: every one prints as a single line and exits non-zero."""


class EdgeKDError(Exception):
    """A problem the user can fix (bad input, missing file, budget not met). Exit code 1."""

    exit_code = 1


class UsageError(EdgeKDError):
    """Wrong command-line usage or an invalid argument value. Exit code 2."""

    exit_code = 2
