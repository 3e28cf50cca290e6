"""Errors a user can cause: the CLI turns each into one line on stderr and exit status 2."""


class InvalidInput(ValueError):
    """Bad user input: the message names the bad value and what is allowed."""
