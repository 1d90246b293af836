"""Errors a user can act on.

Every message says what is wrong and what to do about it; nodes and the CLI show them verbatim.
"""


class DeflickerInputError(ValueError):
    """The input (frames, masks, options, paths) cannot be processed as given."""


class WeightsError(DeflickerInputError):
    """A weights file is missing, truncated, corrupt or made for another network."""


class DeflickerCancelled(RuntimeError):
    """Raised by a progress callback to stop a long computation (the CLI maps Ctrl-C to it)."""
