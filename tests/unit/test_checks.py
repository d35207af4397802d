"""The check framework: registry, results, patterns. No database."""

from __future__ import annotations

import re

import pytest

from auditsql import checks
from auditsql.checks import FAIL, PASS, WARN, Result, excluded, worst


def test_registered_checks_have_stable_ids_and_titles() -> None:
    assert list(checks.REGISTRY)[:2] == ["install.present", "install.version"]
    for check_id, registered in checks.REGISTRY.items():
        assert re.fullmatch(r"[a-z]+(\.[a-z_]+)+", check_id)
        assert registered.id == check_id and registered.title.strip()


def test_registering_twice_or_a_bad_id_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        checks.check("install.present", "again")(lambda ctx: None)
    for bad in ("retention", "Retention.Policy", "retention policy", ".x"):
        with pytest.raises(ValueError, match="dotted"):
            checks.check(bad, "x")


def test_a_later_module_adds_a_check_by_registering_it() -> None:
    @checks.check("example.later", "a check added by registering a function")
    def later(ctx: checks.Context) -> Result:
        return Result.passed("example.later", "fine")

    try:
        assert list(checks.REGISTRY)[-1] == "example.later"
        assert checks.REGISTRY["example.later"].run is later
    finally:
        del checks.REGISTRY["example.later"]


def test_results_are_one_line() -> None:
    result = Result("x.y", FAIL, "two\nlines  here", "do\tthis", ("a\nb",))
    assert (result.message, result.hint, result.details) == ("two lines here", "do this", ("a b",))
    assert Result.passed("x.y", "ok").hint == ""
    with pytest.raises(ValueError, match="status"):
        Result("x.y", "ok", "m")


def test_worst() -> None:
    assert worst([]) == PASS
    assert worst([Result.passed("a.b", "m")]) == PASS
    assert worst([Result.passed("a.b", "m"), Result("a.c", WARN, "m")]) == WARN
    assert worst([Result("a.c", WARN, "m"), Result("a.d", FAIL, "m")]) == FAIL


@pytest.mark.parametrize(
    ("schema", "name", "patterns", "left_out"),
    [
        ("public", "django_migrations", ["django_*"], True),
        ("public", "django_migrations", ["public.django_*"], True),
        ("app", "django_migrations", ["public.django_*"], False),
        ("app", "tmp_1", ["*.tmp_?"], True),
        ("app", "tmp_10", ["*.tmp_?"], False),
        ("public", "Order Items", ["order*"], False),  # case-sensitive
        ("public", "Order Items", ["Order *"], True),
        ("public", "orders", [], False),
        ("public", "orders", ["x", "ord[e]rs"], True),
    ],
)
def test_exclude_patterns(schema: str, name: str, patterns: list[str], left_out: bool) -> None:
    assert excluded(schema, name, patterns) is left_out


def test_summaries_name_the_first_objects() -> None:
    assert checks._summary(["a", "b"], "2 missing") == "2 missing: a, b"
    assert checks._summary(list("abcde"), "5 missing") == "5 missing: a, b, c and 2 more"
    assert checks._n(1, "table") == "1 table" and checks._n(2, "table") == "2 tables"
