"""Errors a user can act on.

Library code raises :class:`BioFaceError` (or a subclass) with a message that
names the file and the problem; the ``bioface`` command prints the message and
exits with status 1, without a traceback.
"""


class BioFaceError(Exception):
    """A problem with the user's input (file, shape, values, arguments)."""


class DataError(BioFaceError):
    """A data file is missing, unreadable, or not in the expected layout."""
