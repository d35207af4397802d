"""installer.parse_id_columns, error translation and exit codes. No database."""

from __future__ import annotations

import pytest
from psycopg import errors as pgerrors

from auditsql import db, errors, render
from auditsql.cli.output import EXIT_FAILURE, EXIT_USAGE, exit_code_for
from auditsql.installer import parse_id_columns


@pytest.mark.parametrize(
    ("value", "columns"),
    [
        (None, None),
        ("a", ["a"]),
        ("a,b", ["a", "b"]),
        (" a , b ", ["a", "b"]),
        ("Mixed Case,b", ["Mixed Case", "b"]),  # names as stored, not SQL syntax
        ('"q"', ['"q"']),
        ("é,ü", ["é", "ü"]),
    ],
)
def test_parse_id_columns(value: str | None, columns: list[str] | None) -> None:
    assert parse_id_columns(value) == columns


@pytest.mark.parametrize("value", ["", " ", ",", "a,", ",a", "a,,b", "a, ,b"])
def test_parse_id_columns_rejects_empty_names(value: str) -> None:
    with pytest.raises(errors.InvalidName, match="--id-columns"):
        parse_id_columns(value)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (pgerrors.InsufficientPrivilege, errors.PermissionDenied),
        (pgerrors.UndefinedTable, errors.NoSuchTable),
        (pgerrors.InvalidTableDefinition, errors.PrimaryKeyRequired),
        (pgerrors.InvalidName, errors.InvalidName),
        (pgerrors.InvalidTextRepresentation, errors.InvalidName),
        (pgerrors.InvalidParameterValue, errors.InvalidValue),
        (pgerrors.FeatureNotSupported, errors.UnsupportedServer),
        (pgerrors.UndefinedColumn, errors.DatabaseError),
        (pgerrors.OperationalError, errors.ConnectionFailed),
    ],
)
def test_translate(exc: type, expected: type) -> None:
    translated = db.translate(exc("auditsql: something went wrong\nsecond line"))
    assert type(translated) is expected
    assert str(translated) == "something went wrong"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.ConnectionFailed, EXIT_USAGE),
        (errors.InvalidName, EXIT_USAGE),
        (errors.InvalidValue, EXIT_USAGE),
        (errors.UnsupportedServer, EXIT_FAILURE),
        (errors.NotInstalled, EXIT_FAILURE),
        (errors.NoSuchTable, EXIT_FAILURE),
        (errors.PrimaryKeyRequired, EXIT_FAILURE),
        (errors.PermissionDenied, EXIT_FAILURE),
        (errors.DatabaseError, EXIT_FAILURE),
    ],
)
def test_exit_codes(error: type, code: int) -> None:
    assert (EXIT_FAILURE, EXIT_USAGE) == (1, 2)
    assert issubclass(error, errors.AuditsqlError)
    assert exit_code_for(error("x")) == code


# --------------------------------------------------------------------------
# Server version check
# --------------------------------------------------------------------------


def test_min_server_version() -> None:
    assert db.MIN_SERVER_VERSION == 140000


check = getattr(db, "check_server_version", None)
needs_check = pytest.mark.skipif(
    check is None,
    reason="auditsql.db has no pure check_server_version(num, text) yet; the check is "
    "inline in db.connect() and needs a pre-14 server to reach",
)


@needs_check
@pytest.mark.parametrize(("num", "text"), [(130014, "13.14"), (90624, "9.6.24"), (139999, "13")])
def test_check_server_version_refuses_old_servers(num: int, text: str) -> None:
    assert check is not None
    with pytest.raises(errors.UnsupportedServer, match="14") as info:
        check(num, text)
    assert text in str(info.value)
    assert exit_code_for(info.value) == EXIT_FAILURE


@needs_check
@pytest.mark.parametrize(("num", "text"), [(140000, "14.0"), (170011, "17.11"), (180006, "18.6")])
def test_check_server_version_accepts_14_and_newer(num: int, text: str) -> None:
    assert check is not None
    check(num, text)


def test_rendering_without_a_server_takes_the_supported_majors_only() -> None:
    assert [render.server_version_num(m) for m in (14, 18)] == [140000, 180000]
    assert db.MIN_SERVER_VERSION == render.OLDEST_MAJOR * 10000
    for major in (13, 19, 0, -14):
        with pytest.raises(errors.InvalidValue, match="14 to 18"):
            render.server_version_num(major)
