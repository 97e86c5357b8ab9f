"""The one exception type the reference raises for bad input.

The CLI (ref.py) turns it into a message on stderr and exit code 2, so a C++ test
that feeds the reference a broken file sees a clear reason instead of a traceback.
"""


class InputError(Exception):
    """A file, flag or config the reference cannot use; the message says which and why."""
