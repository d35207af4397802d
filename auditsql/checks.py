"""Checks run by ``auditsql verify``: each one a small function, registered
under a stable id, that looks at the catalog and returns a result.

Adding a check is registering a function::

    @check("retention.policy", "a retention policy is set")
    def retention_policy(ctx: Context) -> Result | None:
        ...
        return Result.passed("retention.policy", "policy saas: 3 years")

A function returns None when it does not apply (``tables.expected`` without
``--expect``). Checks run in registration order, each in a savepoint, so
that one failing query neither aborts the others nor leaves anything
behind. Nothing here writes: the whole run is one read-only transaction.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import psycopg

from auditsql import __version__, catalog, cron, errors, integrity, partitions, retention, upgrades
from auditsql.fingerprint import (
    EVENT_TRIGGER,
    FUNCTION,
    INSTALLED,
    MISSING,
    OUTDATED,
    UNEXPECTED,
    ObjectState,
    Script,
    classify,
    is_generated_capture,
)
from auditsql.render import event_trigger_name, guard_schema_name, install_definitions

PASS = "pass"
WARN = "warn"
FAIL = "fail"
STATUSES = (PASS, WARN, FAIL)

PINNED_SEARCH_PATH = "search_path=pg_catalog, pg_temp"
MAX_LISTED = 3  # objects named in a one-line message; the rest are in details


@dataclass(frozen=True)
class Result:
    """The outcome of one check: a stable id, pass / warn / fail, a one-line
    message, a one-line hint saying what to do (empty on pass), and the
    objects concerned, one per line."""

    id: str
    status: str
    message: str
    hint: str = ""
    details: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check {self.id}: unknown status {self.status!r}")
        object.__setattr__(self, "message", _one_line(self.message))
        object.__setattr__(self, "hint", _one_line(self.hint))
        object.__setattr__(self, "details", tuple(_one_line(d) for d in self.details))

    @classmethod
    def passed(cls, id: str, message: str, details: tuple[str, ...] = ()) -> Result:
        return cls(id, PASS, message, "", details)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _n(count: int, singular: str, plural: str | None = None) -> str:
    """``1 table`` / ``2 tables``."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def _summary(items: list[str], what: str) -> str:
    """``a, b, c and 2 more`` for a one-line message."""
    if len(items) <= MAX_LISTED:
        return f"{what}: {', '.join(items)}"
    return f"{what}: {', '.join(items[:MAX_LISTED])} and {len(items) - MAX_LISTED} more"


CheckFunction = Callable[["Context"], "Result | None"]


@dataclass(frozen=True)
class Check:
    """A registered check."""

    id: str
    title: str
    run: CheckFunction


REGISTRY: dict[str, Check] = {}


def check(id: str, title: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register a function as the check ``id``, described by ``title``."""
    if not re.fullmatch(r"[a-z]+(\.[a-z_]+)+", id):
        raise ValueError(f"check id {id!r}: expected dotted lower-case words")

    def register(function: CheckFunction) -> CheckFunction:
        if id in REGISTRY:
            raise ValueError(f"check {id} is registered twice")
        REGISTRY[id] = Check(id, title, function)
        return function

    return register


@dataclass
class Expected:
    """A table named with ``--expect``: its oid and name once resolved."""

    name: str
    oid: int | None
    qualified: str | None


@dataclass
class Context:
    """What the checks look at. Catalog reads are made once, on first use."""

    cur: psycopg.Cursor
    schema: str
    expected: list[Expected] = field(default_factory=list)
    all_tables: bool = False
    exclude: list[str] = field(default_factory=list)
    # The DSN verify connected with: pg_cron's job is read from pg_cron's
    # database, which may be another one of the same server (see cron.status).
    dsn: str | None = None
    # --integrity: recompute the hash chain; --digest: earlier chain heads.
    integrity: bool = False
    digests: list[integrity.Digest] = field(default_factory=list)

    @cached_property
    def installation(self) -> catalog.Installation:
        return catalog.installation(self.cur, self.schema)

    @property
    def owner(self) -> str:
        return self.installation.settings.owner

    @property
    def guard_schema(self) -> str:
        return guard_schema_name(self.schema)

    @cached_property
    def partitions(self) -> partitions.Partitions:
        return partitions.partitions(self.cur, self.schema)

    @cached_property
    def policy(self) -> retention.Policy | None:
        return retention.policy(self.cur, self.schema)

    @cached_property
    def cron(self) -> cron.CronStatus:
        return cron.status(self.cur.connection, self.schema, dsn=self.dsn)

    @cached_property
    def script(self) -> Script:
        """What this version's install script defines, for this installation."""
        return install_definitions(
            self.installation.settings, self.cur.connection.info.server_version,
            event_trigger=self.installation.event_trigger,
        )

    @cached_property
    def objects(self) -> list[catalog.CatalogObject]:
        return catalog.fingerprinted_objects(self.cur, self.schema)

    @cached_property
    def privileges(self) -> list[catalog.Privilege]:
        return catalog.privileges(self.cur, self.schema)

    @cached_property
    def states(self) -> list[ObjectState]:
        return classify(self.script, self.objects, __version__)

    @cached_property
    def capture(self) -> list[catalog.AuditedTable]:
        return catalog.audited_tables(self.cur, self.schema)


def run(ctx: Context) -> list[Result]:
    """Run every registered check. When auditsql is not installed (or not
    readable), only ``install.present`` is reported."""
    results: list[Result] = []
    for registered in REGISTRY.values():
        try:
            with ctx.cur.connection.transaction():
                result = registered.run(ctx)
        except (errors.AuditsqlError, psycopg.Error) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            result = Result(registered.id, FAIL, f"could not check: {message}",
                            "fix what the message names and run verify again")
        if result is not None:
            results.append(result)
        if registered.id == "install.present" and result is not None and result.status == FAIL:
            break
    return results


# --------------------------------------------------------------------------
# The checks, in the order they run
# --------------------------------------------------------------------------


@check("install.present", "auditsql is installed in the schema, and readable")
def install_present(ctx: Context) -> Result:
    try:
        found = ctx.installation
    except errors.NotInstalled as exc:
        return Result("install.present", FAIL, str(exc).split(";")[0],
                      "run `auditsql install`")
    except errors.PermissionDenied as exc:
        return Result("install.present", FAIL, str(exc).split(";")[0],
                      "connect as a member of the owner or reader role")
    return Result.passed("install.present",
                         f"auditsql {found.version} is installed in schema {ctx.schema}")


@check("install.version", "the installed version is this package's")
def install_version(ctx: Context) -> Result:
    installed = ctx.installation.version
    if installed == __version__:
        return Result.passed("install.version", f"installed version {installed} is this package's")
    if upgrades.is_newer(installed):
        hint = f"upgrade the auditsql package to {installed} or later"
    else:
        hint = "run `auditsql upgrade`"
    return Result("install.version", FAIL,
                  f"installed version {installed} differs from this package's {__version__}", hint)


@check("objects.present", "every object this version creates exists")
def objects_present(ctx: Context) -> Result:
    missing = [s for s in ctx.states if s.state == MISSING]
    defined = len(ctx.script.definitions)
    if not missing:
        return Result.passed("objects.present",
                             f"all {defined} objects of the install script exist")
    names = [f"{s.kind} {s.identity}" for s in missing]
    return Result("objects.present", FAIL, _summary(names, f"{len(missing)} missing"),
                  "run `auditsql upgrade` to create them", tuple(names))


@check("objects.fingerprints", "every object matches its fingerprint")
def objects_fingerprints(ctx: Context) -> Result:
    outdated = [s for s in ctx.states if s.state == OUTDATED]
    checked = sum(1 for s in ctx.states if s.state in (INSTALLED, OUTDATED))
    if not outdated:
        return Result.passed("objects.fingerprints",
                             f"all {checked} objects match their fingerprints")
    names = [f"{s.kind} {s.identity}: {s.reason}" for s in outdated]
    if all(s.recreated_by_upgrade for s in outdated):
        hint = "run `auditsql upgrade` to create them again"
    else:
        hint = ("restore what was altered by hand (`auditsql install --dry-run` shows its "
                "definition); `auditsql upgrade` re-creates functions and triggers")
    return Result("objects.fingerprints", FAIL, _summary(names, f"{len(outdated)} changed"),
                  hint, tuple(names))


@check("objects.unexpected", "nothing else lives in the audit schema")
def objects_unexpected(ctx: Context) -> Result:
    unexpected = [s for s in ctx.states if s.state == UNEXPECTED]
    if not unexpected:
        return Result.passed("objects.unexpected",
                             f"nothing but auditsql's objects in schema {ctx.schema}")
    names = [f"{s.kind} {s.identity}: {s.reason}" for s in unexpected]
    return Result("objects.unexpected", WARN, _summary(names, f"{len(unexpected)} unexpected"),
                  f"drop or move what auditsql did not create in schema {ctx.schema}", tuple(names))


@check("roles.owner", "the owner role exists, cannot log in and is no superuser")
def roles_owner(ctx: Context) -> Result:
    owner = ctx.owner
    found = catalog.roles(ctx.cur, [owner]).get(owner)
    if found is None:
        return Result("roles.owner", FAIL, f"owner role {owner} does not exist",
                      "run `auditsql upgrade` to create it")
    if found.login or found.superuser:
        what = " and ".join(w for w, bad in (("can log in", found.login),
                                             ("is a superuser", found.superuser)) if bad)
        fix = "NOLOGIN" if not found.superuser else "NOLOGIN NOSUPERUSER"
        return Result("roles.owner", FAIL, f"owner role {owner} {what}",
                      f"ALTER ROLE {_quote(owner)} {fix}")
    return Result.passed("roles.owner", f"owner role {owner} cannot log in")


@check("roles.admin", "the audit administrator role exists")
def roles_admin(ctx: Context) -> Result:
    admin = ctx.installation.settings.admin
    if admin not in catalog.roles(ctx.cur, [admin]):
        return Result("roles.admin", WARN, f"admin role {admin} does not exist",
                      "run `auditsql upgrade` to create it")
    return Result.passed("roles.admin", f"admin role {admin} exists")


@check("roles.members", "who can log in with the owner's or the admin's rights")
def roles_members(ctx: Context) -> Result:
    """Members of the owner role hold its rights over the log (they can
    insert events, and without the event triggers lift the guards);
    members of the admin role run retention and erasure. Nobody needs the
    owner role to attach tables (the operator role does)."""
    settings = ctx.installation.settings
    found, superusers = catalog.members(ctx.cur, settings.owner, settings.admin)
    owners = [m.name for m in found if m.owner]
    admins = [m.name for m in found if m.admin and not m.owner]
    details = tuple([f"{name}: member of {settings.owner} (can write the log)" for name in owners]
                    + [f"{name}: member of {settings.admin}" for name in admins]
                    + [f"{name}: superuser" for name in superusers])
    if owners:
        return Result("roles.members", WARN,
                      _summary(owners, f"{_n(len(owners), 'login role')} can write the log as "
                                       f"members of {settings.owner}"),
                      f"REVOKE {_quote(settings.owner)} FROM them, unless they install auditsql "
                      f"(grant {_quote(settings.operator)} to those who attach tables)", details)
    return Result.passed("roles.members",
                         f"no login role is a member of {settings.owner}; "
                         f"{_n(len(admins), 'member')} of {settings.admin}", details)


@check("objects.ownership",
       "the owner role owns the schema and every object in it, and nothing else")
def ownership(ctx: Context) -> Result:
    owner = ctx.owner
    wrong: list[str] = []
    schema_owner = catalog.schema_owner(ctx.cur, ctx.schema)
    if schema_owner != owner:
        wrong.append(f"schema {ctx.schema} owned by {schema_owner}")
    for found in ctx.objects:
        if found.schema_name == ctx.schema and not found.implicit and found.kind != "trigger" \
                and found.owner != owner:
            wrong.append(f"{found.kind} {found.identity} owned by {found.owner}")
    # What the event triggers run, with the rights of whoever issues DDL:
    # a superuser's only, out of the owner role's reach.
    guard_owner = catalog.schema_owner(ctx.cur, ctx.guard_schema)
    if guard_owner is not None or ctx.installation.event_trigger:
        guarding = [o for o in ctx.objects
                    if o.schema_name == ctx.guard_schema or o.kind == EVENT_TRIGGER]
        owners = catalog.roles(ctx.cur, [guard_owner or "", *(o.owner for o in guarding)])

        def superuser(name: str | None) -> bool:
            return name in owners and owners[name].superuser

        if not superuser(guard_owner):
            wrong.append(f"schema {ctx.guard_schema} owned by {guard_owner}, not a superuser")
        wrong += [f"{o.kind} {o.identity} owned by {o.owner}, not a superuser"
                  for o in guarding if not superuser(o.owner)]
    wrong += [f"{what} outside schema {ctx.schema}"
              for what in catalog.owned_elsewhere(ctx.cur, ctx.schema, owner)]
    if wrong:
        return Result("objects.ownership", FAIL,
                      _summary(wrong, _n(len(wrong), "ownership problem")),
                      f"ALTER ... OWNER TO {_quote(owner)}", tuple(wrong))
    return Result.passed("objects.ownership",
                         f"{owner} owns schema {ctx.schema} and everything in it")


@check("privileges.writers", "nobody may rewrite the log, and only the owner may write it")
def privileges_writers(ctx: Context) -> Result:
    grants = catalog.writer_grants(ctx.privileges, ctx.owner)
    if grants:
        return Result("privileges.writers", FAIL,
                      _summary(grants, _n(len(grants), "write privilege") + " that nobody should hold"),
                      "REVOKE them: nobody may update, delete or truncate the log, and only the "
                      "owner role may insert, through capture",
                      tuple(grants))
    return Result.passed("privileges.writers",
                         f"nobody may update, delete or truncate the log; only {ctx.owner} "
                         "may write the audit tables")


# Who install lets read what (sql/setup/grants.sql): role -> relations.
def _readers(ctx: Context) -> dict[str, set[str]]:
    settings = ctx.installation.settings
    return {settings.owner: {"*"}, settings.reader: {"*"},
            settings.operator: {"installation", "tables"}}


@check("privileges.readers", "only the owner and reader roles may read the audit tables")
def privileges_readers(ctx: Context) -> Result:
    grants = catalog.reader_grants(ctx.privileges, _readers(ctx))
    reader = ctx.installation.settings.reader
    if grants:
        return Result("privileges.readers", FAIL,
                      _summary(grants, _n(len(grants), "read privilege") + " outside the reader role"),
                      f"REVOKE them, and GRANT {_quote(reader)} to roles that must read the log "
                      "(it can hold personal data)", tuple(grants))
    return Result.passed("privileges.readers",
                         f"only {ctx.owner} and {reader} (and their members) may read the log")


@check("privileges.public", "PUBLIC holds nothing but what install grants it")
def privileges_public(ctx: Context) -> Result:
    allowed = ctx.script.public_grants
    extra = [
        f"{privilege} on {kind} {identity}"
        for kind, name, identity, privilege in catalog.public_privileges(
            ctx.cur, [ctx.schema, ctx.guard_schema])
        if not ((kind, name) in allowed and privilege in ("USAGE", "EXECUTE"))
    ]
    if extra:
        return Result("privileges.public", FAIL,
                      _summary(extra, "PUBLIC holds " + _n(len(extra), "privilege")),
                      "REVOKE them FROM PUBLIC, or run `auditsql upgrade`", tuple(extra))
    granted = ", ".join(sorted(f"{kind} {name}" for kind, name in allowed)) or "nothing"
    return Result.passed("privileges.public", f"PUBLIC holds only what install grants ({granted})")


@check("functions.security_definer",
       "every SECURITY DEFINER function is auditsql's, unchanged, and safe from search_path")
def functions_security_definer(ctx: Context) -> Result:
    """Install's functions pin search_path; the capture functions attach
    generates pin nothing (a SET clause would cost every write) but qualify
    every name, so they pass when unchanged since attach stamped them."""
    states = {id(s.found): s for s in ctx.states if s.found is not None}
    wrong: list[str] = []
    definers = [o for o in ctx.objects if o.kind == FUNCTION and o.security_definer]
    for found in definers:
        state = states.get(id(found))
        generated = is_generated_capture(found.kind, found.name)
        if state is None or (state.defined is None and not generated):
            wrong.append(f"{found.identity}: not created by auditsql")
        elif state.state != INSTALLED:
            wrong.append(f"{found.identity}: {state.reason}")
        if PINNED_SEARCH_PATH not in found.config and not generated:
            wrong.append(f"{found.identity}: search_path not pinned to pg_catalog, pg_temp")
    if wrong:
        return Result("functions.security_definer", FAIL,
                      _summary(wrong, _n(len(wrong), "unsafe SECURITY DEFINER function")),
                      "drop functions auditsql did not create; "
                      "`auditsql upgrade` re-creates its own",
                      tuple(wrong))
    return Result.passed("functions.security_definer",
                         f"{len(definers)} SECURITY DEFINER functions, all auditsql's, unchanged, "
                         "search_path pinned or every name qualified")


def _table_problems(ctx: Context, kinds: tuple[str, ...]) -> list[catalog.Problem]:
    return [p for t in ctx.capture for p in t.problems() if p.kind in kinds]


@check("triggers.capture",
       "every audited table has its capture triggers, as attach made them, enabled always")
def triggers_capture(ctx: Context) -> Result:
    problems = [p.message for p in _table_problems(ctx, ("triggers",))]
    dropped = [t.entity_type for t in ctx.capture if not t.exists]
    if problems:
        return Result("triggers.capture", FAIL,
                      _summary(problems, _n(len(problems), "trigger problem")),
                      "run `auditsql attach TABLE` again for each table (or `auditsql upgrade`); "
                      "what it finds is recorded in the log",
                      tuple(problems))
    if dropped:
        oids = [str(t.relid) for t in ctx.capture if not t.exists]
        return Result("triggers.capture", WARN,
                      _summary(dropped, _n(len(dropped), "audited table was dropped",
                                           "audited tables were dropped")),
                      f"stop tracking them: SELECT {_quote(ctx.schema)}.detach(OID) for OID in "
                      f"{', '.join(oids)}", tuple(dropped))
    triggers = sum(len(t.triggers) for t in ctx.capture)
    tables = _n(len(ctx.capture), "audited table")
    return Result.passed("triggers.capture",
                         f"{tables}, {_n(triggers, 'capture trigger')}, "
                         "all as attach made them and enabled always")


@check("capture.columns", "every column a table's key or policies name is still there")
def capture_columns(ctx: Context) -> Result:
    found = _table_problems(ctx, ("columns",))
    messages = [p.message for p in found]
    if found:
        worst_status = FAIL if any(p.severity == catalog.FAIL for p in found) else WARN
        return Result("capture.columns", worst_status,
                      _summary(messages, _n(len(messages), "column")
                               + " renamed or dropped under a key or policy"),
                      "attach the table again naming the columns as they are now (a renamed "
                      "redacted column is stored in clear until then)", tuple(messages))
    return Result.passed("capture.columns",
                         "every key and policy column of the audited tables exists")


@check("capture.id_columns", "explicit id columns are backed by a unique index")
def capture_id_columns(ctx: Context) -> Result:
    messages = [p.message for p in _table_problems(ctx, ("id columns",))]
    if messages:
        return Result("capture.id_columns", WARN,
                      _summary(messages, _n(len(messages), "table") + " with id columns that may repeat"),
                      "add a unique constraint over NOT NULL id columns, then attach again",
                      tuple(messages))
    return Result.passed("capture.id_columns",
                         "every table's rows are identified by a primary key or a unique index")


@check("capture.functions", "every capture function is what attach makes for the table now")
def capture_functions(ctx: Context) -> Result:
    messages = [p.message for p in _table_problems(ctx, ("function",))]
    if messages:
        return Result("capture.functions", WARN,
                      _summary(messages, _n(len(messages), "capture function") + " out of date"),
                      "run `auditsql attach TABLE` (or SELECT audit.refresh(TABLE)); with the "
                      "event triggers this happens after each ALTER TABLE", tuple(messages))
    current = len([t for t in ctx.capture if t.exists])
    return Result.passed("capture.functions",
                         f"{_n(current, 'capture function')}, each as attach makes it now")


# The casts capture must never run: to json or jsonb, of a user-defined
# type, by a function an ordinary role owns (check_json_casts).
_UNSAFE_JSON_CASTS = """
SELECT format('%s -> %s (function %s, owned by %s)', c.castsource::regtype, c.casttarget::regtype,
              c.castfunc::regprocedure, r.rolname)
FROM pg_catalog.pg_cast AS c
JOIN pg_catalog.pg_proc AS p ON p.oid = c.castfunc
JOIN pg_catalog.pg_roles AS r ON r.oid = p.proowner
WHERE c.casttarget IN ('pg_catalog.json'::pg_catalog.regtype, 'pg_catalog.jsonb'::pg_catalog.regtype)
  AND c.castsource >= 16384 AND NOT r.rolsuper
ORDER BY 1
"""


@check("capture.json_casts", "no cast to json of a user-defined type runs an ordinary role's code")
def capture_json_casts(ctx: Context) -> Result:
    """The event triggers refuse such a cast as it is made, and capture
    then does not look for one on each write; a cast made before them, or
    whose function's owner stopped being a superuser, is found here."""
    casts = [str(row[0]) for row in ctx.cur.execute(_UNSAFE_JSON_CASTS).fetchall()]
    if casts:
        return Result("capture.json_casts", FAIL,
                      _summary(casts, _n(len(casts), "unsafe cast to json")),
                      "drop the cast, or have a superuser own its function; capture refuses "
                      "writes to the tables it would run for", tuple(casts))
    return Result.passed("capture.json_casts",
                         "no cast to json or jsonb of a user-defined type runs an ordinary role's code")


@check("triggers.guards", "the log and each partition refuse UPDATE, DELETE and TRUNCATE")
def triggers_guards(ctx: Context) -> Result:
    problems = catalog.guard_problems(ctx.cur, ctx.schema)
    if problems:
        return Result("triggers.guards", FAIL,
                      _summary(problems, _n(len(problems), "guard missing", "guards missing")),
                      "run `auditsql upgrade` (it restores the guards of events and "
                      "events_default); a partition made by hand needs its own", tuple(problems))
    return Result.passed("triggers.guards",
                         f"{ctx.schema}.events and every partition are guarded, enabled always")


@check("triggers.event", "the event triggers refuse DDL that would stop auditing")
def triggers_event(ctx: Context) -> Result:
    names = [event_trigger_name(ctx.schema, event) for event in ("ddl", "drop")]
    if not ctx.installation.event_trigger:
        return Result("triggers.event", WARN,
                      "no event triggers: installed without a superuser, so tampering is "
                      "detected by verify, not prevented",
                      "run `auditsql upgrade` as a superuser to add them")
    found = {o.name: o for o in ctx.objects if o.kind == EVENT_TRIGGER}
    problems = []
    for name in names:
        trigger = found.get(name)
        if trigger is None:
            problems.append(f"{name}: missing")
        elif trigger.enabled != "A":
            problems.append(f"{name}: {_EVENT_ENABLED.get(trigger.enabled or '', 'unknown')}")
    if problems:
        return Result("triggers.event", FAIL, _summary(problems, "event triggers not in force"),
                      "run `auditsql upgrade` as a superuser", tuple(problems))
    return Result.passed("triggers.event", f"event triggers {', '.join(names)} enabled always")


_EVENT_ENABLED = {"O": "enabled without ALWAYS", "R": "enabled for replica only", "D": "disabled"}


# Retention (see docs/retention.md). Each verdict is a function of the
# facts alone, so that it can be judged without a database.


def policy_verdict(policy: retention.Policy | None) -> Result:
    """Warns rather than fails: without a policy every event is kept, so
    nothing is at risk until the law or the disk asks for one."""
    if policy is None:
        return Result("retention.policy_set", WARN,
                      "no policy: every event is kept until one is set",
                      "choose how long events are kept: `auditsql retention set "
                      "financial|medical|saas|INTERVAL`")
    return Result.passed("retention.policy_set", f"{policy.name} ({policy.keep})")


def partitions_ahead_verdict(parts: partitions.Partitions, min_months_ahead: int = 1) -> Result:
    found = (f"current month {'has' if parts.current_month_covered else 'lacks'} a partition;"
             f" {parts.months_ahead} month(s) ahead")
    if parts.current_month_covered and parts.months_ahead >= min_months_ahead:
        return Result.passed("retention.partitions_ahead", found)
    return Result("retention.partitions_ahead", FAIL, found,
                  "run `auditsql retention run` (or schedule it) to create partitions ahead")


def default_partition_verdict(parts: partitions.Partitions) -> Result:
    if parts.default_partition_empty:
        return Result.passed("retention.default_partition_empty", "empty")
    return Result("retention.default_partition_empty", FAIL, "holds events",
                  "run `auditsql retention run` to move them into monthly partitions")


def job_verdict(found: cron.CronStatus) -> Result:
    """Warns rather than fails: an external scheduler may run `auditsql
    retention run` instead of pg_cron."""
    id = "retention.job_scheduled"
    hint = ("run `auditsql retention schedule`, or `auditsql retention run` from "
            "another scheduler")
    if not found.available:
        return Result.passed(
            id, "pg_cron is not available; run `auditsql retention run` from a scheduler")
    if found.scheduled is None:
        return Result(id, WARN, "pg_cron is available but its job could not be read"
                      + (f": {found.problem}" if found.problem else ""), hint)
    if not found.scheduled:
        return Result(id, WARN, "pg_cron is available, no job", hint)
    return Result.passed(id, "scheduled")


@check("retention.policy_set", "a retention policy is set")
def retention_policy_set(ctx: Context) -> Result:
    return policy_verdict(ctx.policy)


@check("retention.partitions_ahead", "the log has partitions for this month and the next")
def retention_partitions_ahead(ctx: Context) -> Result:
    return partitions_ahead_verdict(ctx.partitions)


@check("retention.default_partition_empty", "no event waits in the default partition")
def retention_default_partition_empty(ctx: Context) -> Result:
    return default_partition_verdict(ctx.partitions)


@check("retention.job_scheduled", "maintenance and retention are scheduled where pg_cron is")
def retention_job_scheduled(ctx: Context) -> Result:
    return job_verdict(ctx.cron)


@check("tables.expected", "every table named with --expect is audited")
def tables_expected(ctx: Context) -> Result | None:
    if not ctx.expected:
        return None
    tracked = {t.relid for t in ctx.capture if t.exists}
    missing = [e.name for e in ctx.expected if e.oid is None]
    untracked = [e.qualified or e.name for e in ctx.expected
                 if e.oid is not None and e.oid not in tracked]
    problems = [f"{name}: no such table" for name in missing]
    problems += [f"{name}: not audited" for name in untracked]
    if problems:
        hint = (f"auditsql attach {' '.join(untracked)}" if untracked and not missing
                else "create the table, then `auditsql attach` it")
        return Result("tables.expected", FAIL,
                      _summary(problems, _n(len(problems), "expected table")),
                      hint, tuple(problems))
    return Result.passed("tables.expected",
                         f"all {_n(len(ctx.expected), 'expected table')} audited")


@check("tables.all", "with --all-tables: every table not excluded is audited")
def tables_all(ctx: Context) -> Result | None:
    if not ctx.all_tables:
        return None
    tracked = {t.relid for t in ctx.capture if t.exists}
    candidates = [t for t in catalog.user_tables(ctx.cur, ctx.schema)
                  if not excluded(t[2], t[3], ctx.exclude)]
    untracked = [qualified for oid, qualified, _, _ in candidates if oid not in tracked]
    if untracked:
        return Result("tables.all", FAIL,
                      _summary(untracked, _n(len(untracked), "table not audited",
                                             "tables not audited")),
                      "auditsql attach them, or leave them out with --exclude PATTERN",
                      tuple(untracked))
    excluded_note = f" ({_n(len(ctx.exclude), 'pattern')} excluded)" if ctx.exclude else ""
    return Result.passed("tables.all", f"all {_n(len(candidates), 'table')} audited{excluded_note}")

@check("integrity.chain", "with --integrity: every sealed event is as it was sealed")
def integrity_chain(ctx: Context) -> Result | None:
    if not ctx.integrity:
        return None
    found = integrity.verify_chain(ctx.cur, ctx.schema)
    now = integrity.head(ctx.cur, ctx.schema)
    if found:
        first = found[0]
        ids = f" (ids {_ids(first.ids)})" if first.ids else ""
        return Result("integrity.chain", FAIL,
                      f"block {first.block} does not match: {first.kind}{ids}; "
                      f"{_n(len(found), 'finding')} in all",
                      "compare with a backup and the digests kept outside the database; "
                      "see docs/integrity.md",
                      tuple(f"block {f.block}: {f.kind}"
                            + (f" ids {_ids(f.ids)}" if f.ids else "") + f": {f.detail}"
                            for f in found))
    return Result.passed("integrity.chain",
                         f"{_n(now.block, 'block')} match, sealed up to id {now.last_id}")


@check("integrity.digests", "with --digest: the chain still holds the blocks earlier digests name")
def integrity_digests(ctx: Context) -> Result | None:
    if not ctx.digests:
        return None
    found = integrity.compare_digests(ctx.cur, ctx.schema, ctx.digests)
    if found:
        first = found[0]
        return Result("integrity.digests", FAIL,
                      f"block {first.block}: {first.kind}; {_n(len(found), 'digest')} do not match",
                      "the chain was rebuilt or cut: restore the log from a backup and "
                      "compare; see docs/integrity.md",
                      tuple(f"block {f.block}: {f.kind}: {f.detail}" for f in found))
    return Result.passed("integrity.digests",
                         f"{_n(len(ctx.digests), 'digest')} match the chain")


def _ids(ids: tuple[int, ...]) -> str:
    shown = ", ".join(str(i) for i in ids[:MAX_LISTED * 3])
    return shown + (f" and {len(ids) - MAX_LISTED * 3} more" if len(ids) > MAX_LISTED * 3 else "")


def excluded(schema: str, name: str, patterns: list[str]) -> bool:
    """Whether a table matches one of the ``--exclude`` patterns: shell-style
    wildcards, matched against ``schema.table`` when the pattern has a dot,
    else against the table name alone (unquoted, case-sensitive)."""
    for pattern in patterns:
        subject = f"{schema}.{name}" if "." in pattern else name
        if fnmatch.fnmatchcase(subject, pattern):
            return True
    return False


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def worst(results: list[Result]) -> str:
    """fail if any failed, else warn if any warned, else pass."""
    statuses = {r.status for r in results}
    return FAIL if FAIL in statuses else WARN if WARN in statuses else PASS
