"""Every command sequence of README.md and docs/*.md runs as written.

Each ```sh (and ```cron) block is registered in SHELL below, under a marker
(text that occurs in that block alone): the setup the surrounding text
assumes (the tables it names, an installation), then every line of the
block runs in order against a fresh database. ``auditsql`` lines run the
real command line, with whatever ``--dsn`` names (``...``, an example host,
``"$DATABASE_URL"``) replaced in place by the test's DSN, and AUDITSQL_DSN
set to it; each must exit as ``exit`` says (0 unless listed). Any other line
must be listed in ``skip`` with the reason it cannot run here. Lines are
named by a prefix of their words as a shell splits them (quotes removed). A block
nobody registered fails ``test_every_shell_block_is_registered`` with its
file and line.

To register a new block, add one entry to SHELL::

    Registered("docs/retention.md", "auditsql retention set --under-a-year", Shell(
        setup=(ORDERS, "auditsql install"),       # SQL, auditsql commands, or functions
        exit={"auditsql retention set 6 months": 2},  # command prefix -> exit code
        prints={"auditsql status": "retention: ..."},  # command prefix -> text it prints
        then=lambda ctx: ...,                     # assertions on the database afterwards
    )),

docs/ci.md's GitHub Actions job runs the same way, step by step (CI_STEPS).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tests.docs.doctools import (
    Block,
    Command,
    Ctx,
    Registered,
    Step,
    commands,
    match,
    with_pg_cron,
    with_test_dsn,
)
from tests.harness import pgcluster
from tests.harness.server import Server

MODULE = "tests/docs/test_docs_shell.py"

ExitCode = int | Callable[[Ctx], int]


@dataclass(frozen=True)
class Shell:
    """How to run one block: what must exist first, the lines that cannot
    run here and why, the exit code of lines that do not exit 0, text a line
    must print, and assertions once the block has run."""

    setup: tuple[Step, ...] = ()
    skip: Mapping[str, str] = field(default_factory=dict)
    exit: Mapping[str, ExitCode] = field(default_factory=dict)
    prints: Mapping[str, str] = field(default_factory=dict)  # on stdout or stderr
    then: Callable[[Ctx], None] | None = None


def pg_cron_or_1(ctx: Ctx) -> int:
    """The documented exit code of the pg_cron commands: 1 where the server
    does not load pg_cron ("auditsql retention schedule then says so and
    exits 1")."""
    return 0 if ctx.cron_database else 1


ORDERS = "CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL DEFAULT 'new')"
# Order 1001, written since attach: a hold on it holds its event.
ORDER_1001 = "INSERT INTO orders (id) VALUES (1001)"
USERS = ("CREATE TABLE users (id bigint PRIMARY KEY, email text, role text,"
         " password_hash text, updated_at timestamptz)")
PAYMENTS = "CREATE TABLE payments (id bigint PRIMARY KEY, order_id bigint, amount numeric)"
# Tables an application has but does not audit, which the examples leave
# out with --exclude.
DJANGO = "CREATE TABLE django_migrations (id serial PRIMARY KEY, app text)"
SCRATCH = "CREATE TABLE tmp_import (id int PRIMARY KEY)"

DEMO = "runs scripts/demo.py (python -m scripts.demo), which tests/docs/test_docs_demo.py runs on the server under test"
SUITE = "runs this test suite"
PIP = "the package is installed in the environment the tests run in"


def tracked(ctx: Ctx) -> list[tuple[Any, ...]]:
    return ctx.rows("SELECT relid::regclass::text FROM audit.tables ORDER BY 1")


def assert_tracked(*tables: str) -> Callable[[Ctx], None]:
    def then(ctx: Ctx) -> None:
        assert tracked(ctx) == [(t,) for t in sorted(tables)]
    return then


def assert_actor_required(ctx: Ctx) -> None:
    """orders is audited, and a write to it without an actor fails, as the
    integration pages say a test suite's writes then do."""
    assert tracked(ctx) == [("orders",)]
    with pytest.raises(psycopg.Error) as caught:
        ctx.execute("INSERT INTO orders (id) VALUES (1)")
    assert caught.value.sqlstate == "28000"
    ctx.execute("SELECT audit.set_context('u-42'); INSERT INTO orders (id) VALUES (1)")
    assert ctx.rows("SELECT actor_id FROM audit.events WHERE action = 'created'") == [("u-42",)]


def assert_column_policies(ctx: Ctx) -> None:
    assert ctx.rows("SELECT exclude, redact, on_change, require_actor FROM audit.tables") == [
        ("{updated_at}", "{password_hash}",
         '{"role": "role_changed", "password_hash": "password_changed"}', "t")]


def assert_snapshots(ctx: Ctx, expected: dict[str, int]) -> None:
    found = ctx.rows("SELECT entity_type, count(*) FROM audit.events"
                     " WHERE action = 'snapshot' GROUP BY 1 ORDER BY 1")
    assert {table: int(n) for table, n in found} == expected


def assert_policy(policy: str, keep: str) -> Callable[[Ctx], None]:
    def then(ctx: Ctx) -> None:
        assert ctx.rows("SELECT policy, keep FROM audit.retention") == [(policy, keep)]
    return then


def assert_hold_placed_and_released(ctx: Ctx) -> None:
    assert ctx.rows("SELECT * FROM audit.legal_holds") == []
    assert ctx.rows("SELECT action, entity_type, entity_id FROM audit.events"
                    " WHERE action LIKE 'legal_hold%' ORDER BY id") == [
        ("legal_hold_placed", "public.orders", "1001"),
        ("legal_hold_released", "public.orders", "1001")]


def assert_reports(*names: str) -> Callable[[Ctx], None]:
    """The report files the block wrote: JSON or JUnit, no check failed."""
    def then(ctx: Ctx) -> None:
        for name in names:
            path = ctx.workdir / name
            assert path.exists(), f"{name} was not written"
            if name.endswith(".json"):
                assert json.loads(path.read_text(encoding="utf-8"))["result"] != "fail"
            else:
                assert_junit_passed(path)
    return then


def assert_junit_passed(path: Path) -> ET.Element:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "auditsql verify"
    assert suite.get("failures") == "0" and int(suite.get("tests") or 0) > 0
    return suite


# User 7, created and changed by actor u-42 under a request.
USER_7 = ("SELECT audit.set_context(actor_id => 'u-42', request_id => 'req-1');"
          " INSERT INTO users (id, email, role) VALUES (7, 'ada@example.com', 'member');"
          " UPDATE users SET role = 'admin' WHERE id = 7")
# Order 1001, created under request req-7f3a.
ORDER_1001_REQUEST = ("SELECT audit.set_context(actor_id => 'app', request_id => 'req-7f3a');"
                      " INSERT INTO orders (id) VALUES (1001)")


def assert_exported(ctx: Ctx) -> None:
    lines = (ctx.workdir / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert [str(json.loads(x)["id"]) for x in lines] == [
        r[0] for r in ctx.rows("SELECT id FROM audit.events ORDER BY id")]


def assert_reverted(ctx: Ctx) -> None:
    assert ctx.rows("SELECT * FROM orders") == []
    assert ctx.rows("SELECT action, entity_id, actor_id, actor_email FROM audit.events"
                    " WHERE actor_id = 'ops-7'") == [
        ("deleted", "1001", "ops-7", "ops@example.com")]


SHELL: list[Registered[Shell]] = [
    Registered("README.md", "auditsql log --dsn", Shell(
        setup=(USERS, "auditsql install", "auditsql attach users", USER_7),
        prints={"auditsql history": "u-42", "auditsql diff": '"member"'},
        then=assert_exported,
    )),
    Registered("docs/revert.md", "auditsql revert --dsn", Shell(
        setup=(ORDERS, "auditsql install", "auditsql attach orders", ORDER_1001_REQUEST),
        prints={"auditsql revert --dsn $DATABASE_URL orders": "DELETE FROM"},
        then=assert_reverted,
    )),
    Registered("README.md", "make demo", Shell(
        skip={"make demo": DEMO, "make test": SUITE},
    )),
    Registered("README.md", "pip install .", Shell(
        setup=(ORDERS, USERS),
        skip={"pip install": PIP},
        then=assert_tracked("orders", "users"),
    )),
    Registered("README.md", "auditsql attach users --exclude updated_at", Shell(
        setup=(USERS, "auditsql install"),
        then=assert_column_policies,
    )),
    Registered("docs/reading.md", "auditsql attach orders users --baseline", Shell(
        setup=(ORDERS, USERS, "INSERT INTO orders VALUES (1001, 'paid'), (1002, 'new')",
               "INSERT INTO users VALUES (7, 'a@x', 'member')", "auditsql install"),
        prints={"auditsql attach": "recorded 2 rows of public.orders",
                "auditsql snapshot": "recorded 2 rows of public.orders"},
        then=lambda ctx: assert_snapshots(ctx, {"public.orders": 4, "public.users": 1}),
    )),
    Registered("README.md", "auditsql retention schedule --dsn", Shell(
        setup=(ORDERS, "auditsql install", "auditsql attach orders", ORDER_1001, with_pg_cron),
        exit={"auditsql retention schedule": pg_cron_or_1},
        prints={"auditsql retention status": "policy: financial (keep 7 years)"},
        then=assert_policy("financial", "7 years"),
    )),
    Registered("README.md", "auditsql verify --expect orders --expect users --junit", Shell(
        setup=(ORDERS, USERS, DJANGO, "auditsql install --retention saas",
               "auditsql attach orders users"),
        prints={"auditsql verify --all-tables": '"format": 1'},
        then=assert_reports("report.xml"),
    )),
    Registered("README.md", "make test\n", Shell(
        skip={"make test": SUITE},
    )),
    Registered("docs/retention.md", "auditsql retention set financial", Shell(
        prints={"auditsql status": "retention: financial (keep 7 years)"},
        then=assert_policy("custom", "10 years"),
    )),
    Registered("docs/retention.md", "auditsql retention hold public.orders 1001", Shell(
        setup=(ORDERS, "auditsql install", "auditsql attach orders", ORDER_1001),
        then=assert_hold_placed_and_released,
    )),
    Registered("docs/retention.md", "auditsql retention schedule --cron", Shell(
        setup=("auditsql install --retention saas", with_pg_cron),
        exit={"auditsql retention schedule": pg_cron_or_1,
              "auditsql retention unschedule": pg_cron_or_1},
    )),
    Registered("docs/retention.md", "auditsql retention run --dsn", Shell(
        setup=("auditsql install --retention saas",),
    )),
    Registered("docs/integrity.md", "auditsql seal --dsn", Shell(
        setup=(ORDERS, "auditsql install", "auditsql attach orders",
               "INSERT INTO orders (id) VALUES (1), (2)"),
        prints={"auditsql seal": "sealed "},
    )),
    Registered("docs/verify.md", "auditsql verify --dsn", Shell(
        setup=(ORDERS, USERS, DJANGO, SCRATCH, "auditsql install --retention saas",
               "auditsql attach orders users"),
        then=assert_reports("verify.json", "report.xml"),
    )),
]

# Each framework integration's page: its install line, and the CI check
# that attribution holds (actors required, the installation verified).
CI_CHECK = 'auditsql install --dsn "$DATABASE_URL" --require-actor'
INTEGRATION_PAGES = {"django": "django", "psycopg": "pool", "asyncpg": "asyncpg",
                     "sqlalchemy": "sqlalchemy", "fastapi": "fastapi,sqlalchemy"}
SHELL += [
    Registered(f"docs/integrations/{page}.md", f"pip install 'auditsql[{extra}]'", Shell(
        skip={"pip install": PIP},
    )) for page, extra in INTEGRATION_PAGES.items()
] + [
    # The pages give the same CI check (test_integration_pages_give_one_ci_check):
    # it runs once, for the first.
    Registered(f"docs/integrations/{page}.md", CI_CHECK, Shell(
        setup=(ORDERS,), then=assert_actor_required,
    ) if page == "django" else Shell(
        skip={"auditsql": "the same block as docs/integrations/django.md's, run there"},
    )) for page in INTEGRATION_PAGES
]

def test_every_shell_block_is_registered() -> None:
    _, problems = match(SHELL, ("sh", "cron"), MODULE)
    assert problems == []


def test_integration_pages_give_one_ci_check() -> None:
    found, _ = match([e for e in SHELL if e.marker == CI_CHECK], ("sh",), MODULE)
    assert len(found) == len(INTEGRATION_PAGES)
    assert len({block.text for block in found.values()}) == 1


def run_commands(ctx: Ctx, where: str, lines: list[Command], spec: Shell) -> list[str]:
    """Run the lines in order; return what was skipped, with the reasons."""
    skipped: list[str] = []
    used: set[str] = set()
    for cmd in lines:
        at = f"{where.split(':')[0]}:{cmd.line}"
        reason = next((r for p, r in spec.skip.items() if cmd.startswith(p)), None)
        if reason is not None:
            used.update(p for p in spec.skip if cmd.startswith(p))
            skipped.append(f"{at}: {cmd.text}: {reason}")
            continue
        assert cmd.argv[0] == "auditsql", (
            f"{at}: `{cmd.text}` cannot run in the tests: list it under skip= with the reason "
            f"in {MODULE}")
        res = ctx.cli(*with_test_dsn(cmd.argv[1:], ctx.dsn))
        expected: ExitCode = 0
        for prefix, code in spec.exit.items():
            if cmd.startswith(prefix):
                used.add(prefix)
                expected = code
        if callable(expected):
            expected = expected(ctx)
        assert res.code == expected, f"{at}: expected exit {expected}\n{res}"
        assert "Traceback" not in res.stderr, f"{at}\n{res}"
        if cmd.stdout_to is not None:
            (ctx.workdir / Path(cmd.stdout_to).name).write_text(res.stdout, encoding="utf-8")
        for prefix, text in spec.prints.items():
            if cmd.startswith(prefix):
                used.add(prefix)
                assert text in res.stdout + res.stderr, f"{at}: {text!r} not printed\n{res}"
    stale = set(spec.skip) | set(spec.exit) | set(spec.prints)
    assert stale <= used, f"{where}: registered for no line of the block: {sorted(stale - used)}"
    return skipped


@pytest.mark.parametrize("entry", SHELL, ids=lambda e: e.id)
def test_shell_block_runs_as_documented(entry: Registered[Shell], ctx: Ctx) -> None:
    found, problems = match([entry], ("sh", "cron"), MODULE)
    assert entry.id in found, problems
    block: Block = found[entry.id]
    for step in entry.spec.setup:
        ctx.step(step)
    run_commands(ctx, block.where, commands(block), entry.spec)
    if entry.spec.then is not None:
        entry.spec.then(ctx)


# --------------------------------------------------------------------------
# docs/ci.md: the GitHub Actions job, step by step
# --------------------------------------------------------------------------

CI_JOB = "verify-auditing"


def migrate(ctx: Ctx, step: dict[str, Any]) -> None:
    """The application's migrations create the tables the job attaches."""
    ctx.execute(f"{ORDERS}; {USERS}; {PAYMENTS}")


def report_is_published(ctx: Ctx, step: dict[str, Any]) -> None:
    """The artifact step uploads the file verify wrote."""
    assert (ctx.workdir / step["with"]["path"]).exists(), step


# Steps that do not run `auditsql`, by name (or by `uses` for unnamed ones):
# the reason they cannot run here, or what stands in for them.
CI_STEPS: dict[str, str | Callable[[Ctx, dict[str, Any]], None]] = {
    "actions/checkout@v4": "GitHub checks out the repository",
    "actions/setup-python@v5": "the tests run on their own Python",
    "Install the application and auditsql": PIP,
    "Run the migrations": migrate,
    "Publish the verify report": report_is_published,
}


def ci_job() -> tuple[Block, dict[str, Any]]:
    # docs/integrity.md's job is run by tests/docs/test_docs_integrity.py.
    found, problems = match([Registered("docs/ci.md", "jobs:", None),
                             Registered("docs/integrity.md", "audit-digests", None)],
                            ("yaml",), MODULE)
    assert problems == []
    block = next(iter(found.values()))
    return block, yaml.safe_load(block.text)["jobs"][CI_JOB]


def run_ci_job(ctx: Ctx) -> Path:
    """Every step of the job in order; the path of the report it writes."""
    block, job = ci_job()
    assert "AUDITSQL_DSN" in job["env"], "the steps rely on AUDITSQL_DSN"
    for step in job["steps"]:
        key = step.get("name") or step["uses"]
        stand_in = CI_STEPS.get(key)
        if callable(stand_in):
            stand_in(ctx, step)
        elif stand_in is None:
            assert "run" in step, f"docs/ci.md: step {key!r} is not known to {MODULE}"
            lines = commands(Block(block.path, block.line, "sh", step["run"]))
            run_commands(ctx, f"{block.where} ({key})", lines, Shell())
    return ctx.workdir / "report.xml"


def test_every_ci_step_is_known() -> None:
    _, job = ci_job()
    keys = [step.get("name") or step["uses"] for step in job["steps"]]
    assert set(CI_STEPS) <= set(keys), "CI_STEPS names a step the job no longer has"
    unknown = [step for step in job["steps"] if (step.get("name") or step["uses"]) not in CI_STEPS
               and not str(step.get("run", "")).lstrip().startswith("auditsql")]
    assert unknown == []


def case_output(suite: ET.Element, name: str) -> str:
    """The system-out of one check's testcase: ``status: message``."""
    case = next(c for c in suite.iter("testcase") if c.get("name") == name)
    out = case.find("system-out")
    assert out is not None, f"{name}: no system-out (failed?)"
    return out.text or ""


def test_ci_job_verifies_and_writes_the_report(ctx: Ctx) -> None:
    suite = assert_junit_passed(run_ci_job(ctx))
    cases = {case.get("name") for case in suite.iter("testcase")}
    assert "tables.expected" in cases and "triggers.event" in cases
    assert tracked(ctx) == [("orders",), ("payments",), ("users",)]
    # docs/ci.md: "The service container's postgres user is a superuser, so
    # auditsql install also creates the event triggers and triggers.event
    # passes"; "The job sets no retention policy, so retention.policy_set
    # warns" (the job's steps above exit 0).
    assert case_output(suite, "triggers.event").startswith("pass: ")
    assert case_output(suite, "retention.policy_set").startswith("warn: ")


def test_ci_job_on_a_managed_database_warns_and_exits_0(pg: Server, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/ci.md: against a database without a superuser, triggers.event
    warns instead, and verify still exits 0. The job's role owns the
    database and may create roles, as on a managed service. The roles
    auditsql creates are the cluster's, so this runs on a cluster of its own,
    as new as the service container is."""
    if pg.cluster is None:
        pytest.skip("needs local server binaries, to start a cluster of its own")
    monkeypatch.chdir(tmp_path)
    cluster = pgcluster.start_cluster(pg.cluster.bindir)
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE ROLE app LOGIN CREATEROLE")
            admin.execute("CREATE DATABASE app OWNER app")
        server = Server({"host": str(cluster.sockdir), "port": cluster.port}, cluster.superuser,
                        cluster.version_num, "local", cluster)
        ctx = Ctx(server, cluster.dsn("app", user="app"), tmp_path, "app")
        try:
            suite = assert_junit_passed(run_ci_job(ctx))
        finally:
            ctx.close()
            server.close()
        assert case_output(suite, "triggers.event").startswith("warn: ")
        assert case_output(suite, "retention.policy_set").startswith("warn: ")
    finally:
        cluster.stop()
