"""Retention input checks and the verdicts of its verify checks; no database."""

from __future__ import annotations

from typing import Any

import pytest

from auditsql import checks, cron, errors, retention
from auditsql.cron import CronJob, CronStatus
from auditsql.partitions import Partitions
from auditsql.retention import Policy


@pytest.mark.parametrize("value", [
    "", "   ", "* * * *\n*", "* * * * *\x00", "\t* * * * *", "*" * 201, "* * * *",
    "* * * * * *", "* * * * *'; DROP TABLE canary; --", "1;2 * * * *", "@daily; --",
    "$(reboot) * * * *",
])
def test_bad_schedules(value: str) -> None:
    with pytest.raises(errors.InvalidValue, match="schedule"):
        cron.validate_schedule(value)


def test_good_schedules_pass_to_pg_cron() -> None:
    for value in (cron.DEFAULT_CRON, "*/5 * * * *", "0 0 1 * *", "61 * * * *",
                  "0 12 * jan-mar mon", "@daily", "30 seconds", "0 3 $ * *"):
        cron.validate_schedule(value)  # pg_cron itself judges the fields


@pytest.mark.parametrize("months", [-1, 121, 10**9])
def test_bad_months_ahead(months: int) -> None:
    with pytest.raises(errors.InvalidValue, match="between 0 and 120"):
        retention.validate_months_ahead(months)


@pytest.mark.parametrize("value", ["saas\x00", "x" * 101])
def test_policy_text_no_server_could_take(value: str) -> None:
    with pytest.raises(errors.InvalidValue):
        retention.validate_policy_text(value)


def test_job_names_are_per_database_and_schema() -> None:
    assert cron.job_name("app", "audit") == "auditsql:app:audit"
    assert cron.job_name("app", "other") != cron.job_name("app2", "other")


POLICY = Policy("saas", "3 years", None, "postgres")  # type: ignore[arg-type]
JOB = CronJob(1, "auditsql:app:audit", "17 3 * * *", "SELECT 1", "app", "postgres", True)


def parts(covered: bool = True, ahead: int = 3, empty: bool = True) -> Partitions:
    return Partitions(4, "events_a", "events_b", covered, ahead, empty)


def job(**kw: Any) -> CronStatus:
    return CronStatus(**{"available": True, "database": "app", "installed": True, "job": JOB,
                         **kw})


def test_all_well() -> None:
    verdicts = [checks.policy_verdict(POLICY), checks.partitions_ahead_verdict(parts()),
                checks.default_partition_verdict(parts()), checks.job_verdict(job())]
    assert {v.status for v in verdicts} == {"pass"}
    assert [v.id for v in verdicts] == ["retention.policy_set", "retention.partitions_ahead",
                                        "retention.default_partition_empty",
                                        "retention.job_scheduled"]


def test_each_fact_judges_its_own_check() -> None:
    assert checks.partitions_ahead_verdict(parts(ahead=0)).status == "fail"
    assert checks.partitions_ahead_verdict(parts(covered=False, ahead=0)).status == "fail"
    assert checks.partitions_ahead_verdict(parts(ahead=3), min_months_ahead=4).status == "fail"
    assert checks.default_partition_verdict(parts(empty=False)).status == "fail"
    # No policy, or no job: warnings, with what to do.
    assert checks.policy_verdict(None).status == "warn"
    unscheduled = checks.job_verdict(job(job=None))
    assert unscheduled.status == "warn" and "retention schedule" in unscheduled.hint
    inactive = JOB.__class__(*[False if f == "active" else getattr(JOB, f)
                               for f in JOB.__dataclass_fields__])
    assert checks.job_verdict(job(job=inactive)).status == "warn"
    unread = checks.job_verdict(job(job=None, problem="permission denied"))
    assert unread.status == "warn" and "permission denied" in unread.message
    assert all(v.hint for v in (checks.policy_verdict(None), checks.default_partition_verdict(
        parts(empty=False)), checks.partitions_ahead_verdict(parts(ahead=0))))


def test_without_pg_cron_no_job_is_expected() -> None:
    verdict = checks.job_verdict(CronStatus(available=False))
    assert verdict.status == "pass" and "retention run" in verdict.message


def removed(rows_removed: int, rows_kept: int) -> retention.Removed:
    return retention.Removed("events_2019_12", None, None, rows_removed, rows_kept)  # type: ignore[arg-type]


def test_what_a_run_would_remove_in_a_few_words() -> None:
    assert retention.summarize([]) == "nothing"
    assert retention.summarize([removed(5, 0)]) == "5 events from 1 partition"
    assert retention.summarize([removed(5, 1), removed(0, 0)]) == (
        "5 events from 2 partitions (1 kept under legal hold)")


def test_policy_refusals_are_invalid_values() -> None:
    from auditsql.cli.output import EXIT_USAGE, exit_code_for

    refused = errors.PolicyRefused("too short", [removed(1, 0)])
    assert isinstance(refused, errors.InvalidValue) and refused.removes == [removed(1, 0)]
    assert exit_code_for(refused) == EXIT_USAGE


def test_a_hold_that_holds_nothing_is_a_failure_not_a_usage_error() -> None:
    from auditsql.cli.output import EXIT_FAILURE, exit_code_for

    assert exit_code_for(errors.HoldsNothing("nothing to hold")) == EXIT_FAILURE
