"""The failures that are neither a user's mistake nor a bug.

`vlm-tf` ends a user's mistake (bad argument, unreadable file) with exit
status 2 and a bug with 1 and its traceback. Between them is a command
whose input was fine but that cannot finish: another process is writing
the same run folder, or training diverged. It ends with exit status 1 and
one line saying what happened and what is left; no traceback, since
nothing in the code went wrong.
"""


class CannotFinish(RuntimeError):
    """A command could not finish for a reason its message gives in full."""
