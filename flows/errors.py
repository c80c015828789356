"""Typed errors. Raised for bad configuration and environment problems only.

Bad *documents* are never exceptions: they become rejection rows with a reason code.
The CLI translates every ``CorpusError`` into a one-line message and an exit code.
"""


class CorpusError(Exception):
    """Base class of every error the CLI turns into a message instead of a traceback."""

    exit_code = 2


class ConfigError(CorpusError):
    """The run configuration (parameters, config file, rule file) is invalid."""


class SourceError(CorpusError):
    """The source folder is missing, not a directory, or unreadable."""


class OutputError(CorpusError):
    """The output folder cannot be created or written."""


class OutputLockedError(OutputError):
    """Another run holds the lock on the output folder."""

    exit_code = 3


class RulesError(ConfigError):
    """A boilerplate rule file is malformed."""
