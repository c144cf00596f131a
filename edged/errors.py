"""Errors that reach the user. Each carries the exit code the CLI returns.

Bad input (a config, a model file, a missing runtime the config asks for) exits 2;
a failure while running exits 1. Messages name what is wrong and where, and never
contain credentials.
"""

from __future__ import annotations


class EdgedError(Exception):
    """An error with a message meant for the operator; never shown as a traceback."""

    exit_code = 1

    def lines(self) -> list[str]:
        return [str(self)]


class InputError(EdgedError):
    """Bad input from the user: a config, a model, a path, a command-line value."""

    exit_code = 2


class ConfigError(InputError):
    """One or more problems in a configuration file, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems

    def lines(self) -> list[str]:
        return list(self.problems)


class ModelError(InputError):
    """A model file that cannot be used: malformed, mismatched or missing."""


class EngineUnavailable(InputError):
    """The configured inference runtime is not installed on this machine."""


class EngineError(EdgedError):
    """The inference engine failed while running."""
