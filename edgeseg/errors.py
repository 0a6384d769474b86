"""Errors a user can act on. Anything else escaping edgeseg is a bug."""


class EdgesegError(Exception):
    """Bad input: the message names the file or YAML key, what was expected and what was received."""

    exit_code = 2


class RecipeError(EdgesegError):
    """A recipe that cannot be loaded or fails validation."""


class DataError(EdgesegError):
    """A dataset that is missing, empty or malformed."""


class ModelError(EdgesegError):
    """A model file that cannot be loaded or is not a segmentation model edgeseg can use."""


class StageError(EdgesegError):
    """A stage that ran but could not deliver what its recipe section asked for."""

    exit_code = 4


class VerificationError(EdgesegError):
    """A verification gate failed; the report is written all the same."""

    exit_code = 3
