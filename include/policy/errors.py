"""The one error a bad policy raises; the DAG file turns it into an import error shown in the UI."""


class PolicyError(ValueError):
    """The policy is invalid. The message lists every problem, one per line, as `file: key.path: problem`."""
