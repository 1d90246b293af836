"""Errors a user can act on.

Every message says what is wrong and what to do about it; nodes and the CLI show them verbatim.
"""


class DeflickerInputError(ValueError):
    """The input (frames, masks, options, paths) cannot be processed as given."""


class WeightsError(DeflickerInputError):
    """A weights file is missing, truncated, corrupt or made for another network."""


class DeflickerCancelled(RuntimeError):
    """What a caller's progress callback may raise to stop a long computation; the library lets
    it through unchanged. The batch takes it (in a clip) as a stop of the whole batch, not as a
    failed clip. Ctrl-C is not turned into it: in the CLI it stays Python's KeyboardInterrupt,
    which `cli.main` reports in one line with exit code 130."""
