"""Errors a user can cause: the CLI turns each into one line on stderr and exit status 2."""


class InvalidInput(ValueError):
    """Bad user input: the message names the bad value and what is allowed."""


class DefaultOptionInvalid(InvalidInput):
    """A module option the user did not give is invalid at its default value (SE's reduction 16
    on 8 channels, ULSAM's 4 groups on 90): the message says "(the default)", and ``option``
    names the option so that each caller can say how to set it (a flag, a plan's ``:key=value``,
    a keyword argument)."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option
