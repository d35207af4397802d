"""Where output goes: data on stdout, diagnostics on stderr. Colour only on
a terminal. Domain errors become one line on stderr and an exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from auditsql import errors

out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

EXIT_FAILURE = 1
EXIT_USAGE = 2

# Errors that mean "could not even start": the same exit code as bad usage.
_USAGE_ERRORS = (errors.ConnectionFailed, errors.InvalidName, errors.InvalidValue)


def exit_code_for(exc: errors.AuditsqlError) -> int:
    """The exit code for a domain error (documented in the README)."""
    return EXIT_USAGE if isinstance(exc, _USAGE_ERRORS) else EXIT_FAILURE


@contextmanager
def reported() -> Iterator[None]:
    """Turn a domain error into ``error: ...`` on stderr and a non-zero exit."""
    try:
        yield
    except errors.AuditsqlError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(code=exit_code_for(exc)) from None
