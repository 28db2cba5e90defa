"""The project's own error and warning types.

Every user-facing problem (bad parameter, bad data, malformed upload) raises
:class:`VQLensError` or a subclass, with a message that says what was wrong and
what to do. It subclasses :class:`ValueError` so that code written against the
scikit-learn convention (``except ValueError``) keeps working.
"""


class VQLensError(ValueError):
    """A problem with the user's parameters or data; the message is for a person."""


class DataError(VQLensError):
    """Input data (an array or an uploaded file) cannot be used as it is."""


class VQLensWarning(UserWarning):
    """A degenerate but usable result (for example empty clusters that were repaired)."""
