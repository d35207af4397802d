"""`auditsql verify`: run the checks of ``auditsql.checks`` and report them
as a table, JSON (docs/verify.schema.json) and JUnit XML."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from auditsql import __version__, checks, integrity
from auditsql.audit import Audit
from auditsql.cli.options import Dsn, Json, Schema
from auditsql.cli.output import EXIT_FAILURE, EXIT_USAGE, err, out, reported

JSON_FORMAT = 1  # "format" in the JSON report; raised only on incompatible changes

_STYLES = {checks.PASS: "green", checks.WARN: "yellow", checks.FAIL: "bold red"}


def verify(
    dsn: Dsn,
    schema: Schema = "audit",
    expect: Annotated[
        list[str] | None,
        typer.Option(
            "--expect",
            metavar="TABLE",
            help="A table that must be audited (orders, public.orders); repeat for more.",
            show_default=False,
        ),
    ] = None,
    all_tables: Annotated[
        bool,
        typer.Option("--all-tables", help="Require every user table to be audited."),
    ] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            metavar="PATTERN",
            help="With --all-tables, leave out tables matching a shell-style pattern "
                 "(django_*, public.tmp_*); repeat for more.",
            show_default=False,
        ),
    ] = None,
    check_integrity: Annotated[
        bool,
        typer.Option("--integrity",
                     help="Also recompute the hash chain over the log (docs/integrity.md)."),
    ] = False,
    digest: Annotated[
        list[Path] | None,
        typer.Option(
            "--digest",
            metavar="FILE",
            help="With --integrity, a chain head kept by `auditsql digest`; repeat for more.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    as_json: Json = False,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", metavar="FILE", help="Also write a JUnit XML report to FILE.",
                     dir_okay=False, show_default=False),
    ] = None,
) -> None:
    """Check that auditing is installed, intact and in force.

    Runs every check (see docs/verify.md): installed version, object
    fingerprints, roles, ownership, privileges, capture triggers, guards,
    event triggers, the tables named with --expect or --all-tables, and
    with --integrity the hash chain over the log. Exits 0 when nothing
    fails (warnings allowed), 1 when a check fails, 2 on usage or
    connection errors.
    """
    if exclude and not all_tables:
        raise typer.BadParameter("--exclude needs --all-tables", param_hint="'--exclude'")
    if digest and not check_integrity:
        raise typer.BadParameter("--digest needs --integrity", param_hint="'--digest'")
    with reported():
        digests = [integrity.load_digest(path) for path in digest or []]
    with reported(), Audit(dsn, schema=schema) as audit:
        found = audit.verify(expect=expect or [], all_tables=all_tables,
                             exclude=exclude or [], integrity=check_integrity,
                             digests=digests)
        results = found.results
        report = {
            "format": JSON_FORMAT,
            "auditsql": __version__,
            "schema": schema,
            "installed_version": found.installed_version,
            "result": found.result,
            "summary": {status: sum(r.status == status for r in results)
                        for status in checks.STATUSES},
            "checks": [
                {"id": r.id, "status": r.status, "message": r.message, "hint": r.hint,
                 "details": list(r.details)}
                for r in results
            ],
        }
        if junit is not None:
            _write_junit(junit, report)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print_human(report)
    if report["result"] == checks.FAIL:
        raise typer.Exit(EXIT_FAILURE)


def _print_human(report: dict) -> None:
    """A table on a terminal; plain lines, one per check, otherwise."""
    summary = report["summary"]
    installed = report["installed_version"]
    head = (f"auditsql {__version__}: schema {report['schema']}"
            + (f", installed {installed}" if installed else ", not installed"))
    tail = (f"{len(report['checks'])} checks: {summary['pass']} passed, "
            f"{summary['warn']} warnings, {summary['fail']} failed")
    if out.is_terminal:
        grid = Table(title=head, title_justify="left", show_lines=False)
        for column in ("result", "check", "finding", "what to do"):
            grid.add_column(column, overflow="fold")
        for item in report["checks"]:
            finding = item["message"]
            if item["status"] != checks.PASS and item["details"]:
                finding += "\n" + "\n".join(f"- {d}" for d in item["details"])
            grid.add_row(Text(item["status"].upper(), style=_STYLES[item["status"]]),
                         item["id"], finding, item["hint"])
        out.print(grid)
        out.print(tail, markup=False)
        return
    print(head)
    width = max((len(item["id"]) for item in report["checks"]), default=0)
    for item in report["checks"]:
        print(f"{item['status'].upper():<4}  {item['id']:<{width}}  {item['message']}")
        if item["status"] != checks.PASS:
            for detail in item["details"]:
                print(f"{'':<4}  {'':<{width}}  - {detail}")
            if item["hint"]:
                print(f"{'':<4}  {'':<{width}}  hint: {item['hint']}")
    print(tail)


def _write_junit(path: Path, report: dict) -> None:
    """One testsuite, one testcase per check; a failed check is a failure,
    a warning passes with its finding in system-out."""
    items = report["checks"]
    failures = sum(item["status"] == checks.FAIL for item in items)
    attributes = {"name": "auditsql verify", "tests": str(len(items)),
                  "failures": str(failures), "errors": "0", "skipped": "0"}
    suites = ET.Element("testsuites", attributes)
    suite = ET.SubElement(suites, "testsuite", {
        **attributes,
        "timestamp": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "hostname": socket.gethostname(),
    })
    properties = ET.SubElement(suite, "properties")
    for name in ("auditsql", "schema", "installed_version", "result"):
        ET.SubElement(properties, "property", {"name": name, "value": str(report[name] or "")})
    for item in items:
        case = ET.SubElement(suite, "testcase", {"classname": "auditsql.verify",
                                                 "name": item["id"], "time": "0"})
        body = "\n".join([*(f"- {d}" for d in item["details"]),
                          *([f"hint: {item['hint']}"] if item["hint"] else [])])
        if item["status"] == checks.FAIL:
            failure = ET.SubElement(case, "failure", {"message": item["message"], "type": "fail"})
            failure.text = body
        else:
            output = ET.SubElement(case, "system-out")
            output.text = f"{item['status']}: {item['message']}" + (f"\n{body}" if body else "")
    tree = ET.ElementTree(suites)
    ET.indent(tree)
    try:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        err.print(f"error: cannot write {path}: {exc.strerror or exc}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
