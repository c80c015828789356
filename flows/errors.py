"""Typed errors. Raised for bad configuration and environment problems only.

Bad *documents* are never exceptions: they become rejection rows with a reason code.
The CLI translates every ``CorpusError`` into a one-line message and an exit code.

Exit codes of ``corpus run`` (README, "Command line"):

====  ==========================================================================
0     published (some inputs may have been rejected)
1     ``--fail-on-reject`` and some input was rejected
2     an expected failure: configuration, source, output, disk, the Prefect API
3     another run holds the output's lock
70    a bug (EX_SOFTWARE): the traceback is in the run's log file
130   interrupted by SIGINT (Ctrl-C); 143: by SIGTERM
====  ==========================================================================
"""

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_FAILURE = 2
EXIT_LOCKED = 3
EXIT_SOFTWARE = 70
EXIT_SIGNAL_BASE = 128


class CorpusError(Exception):
    """Base class of every error the CLI turns into a message instead of a traceback."""

    exit_code = EXIT_FAILURE


class ConfigError(CorpusError):
    """The run configuration (parameters, config file, rule file) is invalid."""


class SourceError(CorpusError):
    """The source folder is missing, not a directory, or unreadable."""


class OutputError(CorpusError):
    """The output folder cannot be created or written."""


class OutputLockedError(OutputError):
    """Another run holds the lock on the output folder."""

    exit_code = EXIT_LOCKED


class RulesError(ConfigError):
    """A boilerplate rule file is malformed."""


class PrefectApiError(CorpusError):
    """The Prefect API does not answer, or stopped answering during the run."""
