"""Retention input checks and the health verdicts; no database."""

from __future__ import annotations

import pytest

from auditsql import errors, retention
from auditsql.retention import Policy, RetentionHealth


@pytest.mark.parametrize("value", [
    "", "   ", "* * * *\n*", "* * * * *\x00", "\t* * * * *", "*" * 201, "* * * *",
    "* * * * * *", "* * * * *'; DROP TABLE canary; --", "1;2 * * * *", "@daily; --",
    "$(reboot) * * * *",
])
def test_bad_schedules(value: str) -> None:
    with pytest.raises(errors.InvalidValue, match="schedule"):
        retention.check_cron(value)


def test_good_schedules_pass_to_pg_cron() -> None:
    for value in (retention.DEFAULT_CRON, "*/5 * * * *", "0 0 1 * *", "61 * * * *",
                  "0 12 * jan-mar mon", "@daily", "30 seconds", "0 3 $ * *"):
        retention.check_cron(value)  # pg_cron itself judges the fields


@pytest.mark.parametrize("months", [-1, 121, 10**9])
def test_bad_months_ahead(months: int) -> None:
    with pytest.raises(errors.InvalidValue, match="between 0 and 120"):
        retention.check_months_ahead(months)


@pytest.mark.parametrize("value", ["saas\x00", "x" * 101])
def test_policy_text_no_server_could_take(value: str) -> None:
    with pytest.raises(errors.InvalidValue):
        retention.check_policy_text(value)


def test_job_names_are_per_database_and_schema() -> None:
    assert retention.job_name("app", "audit") == "auditsql:app:audit"
    assert retention.job_name("app", "other") != retention.job_name("app2", "other")


POLICY = Policy("saas", "3 years", None, "postgres")  # type: ignore[arg-type]


def verdicts(health: RetentionHealth, **kw: int) -> dict[str, str]:
    return {c.id: c.result for c in health.checks(**kw)}


def test_all_well() -> None:
    health = RetentionHealth(True, 3, True, POLICY, True, True)
    assert set(verdicts(health).values()) == {"pass"}
    assert health.policy_set


def test_each_fact_fails_its_own_check() -> None:
    assert verdicts(RetentionHealth(True, 0, True, POLICY, True, True))[
        "retention.partitions_ahead"] == "fail"
    assert verdicts(RetentionHealth(False, 0, True, POLICY, True, True))[
        "retention.partitions_ahead"] == "fail"
    assert verdicts(RetentionHealth(True, 3, True, POLICY, True, True), min_months_ahead=4)[
        "retention.partitions_ahead"] == "fail"
    assert verdicts(RetentionHealth(True, 3, False, POLICY, True, True))[
        "retention.default_partition_empty"] == "fail"
    assert verdicts(RetentionHealth(True, 3, True, None, True, True))[
        "retention.policy_set"] == "fail"
    assert verdicts(RetentionHealth(True, 3, True, POLICY, True, False))[
        "retention.job_scheduled"] == "fail"
    assert verdicts(RetentionHealth(True, 3, True, POLICY, True, None))[
        "retention.job_scheduled"] == "fail"


def test_without_pg_cron_no_job_is_expected() -> None:
    health = RetentionHealth(True, 3, True, POLICY, False, None)
    [job] = [c for c in health.checks() if c.id == "retention.job_scheduled"]
    assert job.result == "pass" and "retention run" in job.detail


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
