"""Permission matching: Racetrack's rules, as a table of (grant, check, expected)."""

from __future__ import annotations

import pytest

from trackside.auth.permissions import Grant, Resource, any_grant_matches, grant_matches, internal_scopes_allow
from trackside.auth.scopes import Scope

FAMILY, OTHER_FAMILY = "fam-adder", "fam-other"
JOB, OTHER_JOB = "job-adder-1", "job-adder-2"
PERFORM = "/api/v1/perform"

CASES = [
    # grant, scope checked, resource, allowed?
    (Grant("call_job"), Scope.CALL_JOB, Resource(FAMILY, JOB, PERFORM), True),
    (Grant("call_job"), Scope.READ_JOB, Resource(FAMILY, JOB), False),
    (Grant("full_access"), Scope.DELETE_JOB, Resource(FAMILY, JOB), True),
    (Grant("call_job", FAMILY), Scope.CALL_JOB, Resource(FAMILY, JOB, PERFORM), True),
    (Grant("call_job", FAMILY), Scope.CALL_JOB, Resource(OTHER_FAMILY, "j", PERFORM), False),
    (Grant("delete_job", FAMILY, JOB), Scope.DELETE_JOB, Resource(FAMILY, JOB), True),
    (Grant("delete_job", FAMILY, JOB), Scope.DELETE_JOB, Resource(FAMILY, OTHER_JOB), False),
    (Grant("call_job", FAMILY, None, PERFORM), Scope.CALL_JOB, Resource(FAMILY, JOB, PERFORM), True),
    (Grant("call_job", FAMILY, None, PERFORM), Scope.CALL_JOB, Resource(FAMILY, JOB, PERFORM + "/"), True),
    (Grant("call_job", FAMILY, None, PERFORM), Scope.CALL_JOB, Resource(FAMILY, JOB, "/api/v1/other"), False),
    (Grant("call_job", FAMILY, None, PERFORM), Scope.CALL_JOB, Resource(FAMILY, JOB, PERFORM + "/more"), False),
    # An endpoint-narrowed row is no job-level permission.
    (Grant("call_job", FAMILY, None, PERFORM), Scope.CALL_JOB, Resource(FAMILY, JOB), False),
    # Scope-only checks need just a row with that scope.
    (Grant("deploy_new_family", FAMILY), Scope.DEPLOY_NEW_FAMILY, Resource(), True),
    (Grant("read_job"), Scope.DEPLOY_NEW_FAMILY, Resource(), False),
]


@pytest.mark.parametrize(("grant", "scope", "resource", "allowed"), CASES)
def test_grant_matching_follows_racetracks_rules(grant: Grant, scope: Scope, resource: Resource, allowed: bool) -> None:
    assert grant_matches(grant, scope, resource) is allowed


def test_no_grants_allow_nothing_and_any_matching_grant_allows() -> None:
    resource = Resource(FAMILY, JOB, PERFORM)
    assert not any_grant_matches([], Scope.CALL_JOB, resource)
    grants = [Grant("read_job"), Grant("call_job", OTHER_FAMILY), Grant("call_job", FAMILY, JOB)]
    assert any_grant_matches(grants, Scope.CALL_JOB, resource)
    assert not any_grant_matches(grants[:2], Scope.CALL_JOB, resource)


@pytest.mark.parametrize(
    ("scopes", "scope", "allowed"),
    [
        (None, Scope.DELETE_JOB, True),
        ([], Scope.DELETE_JOB, True),
        (["full_access"], Scope.CALL_ADMIN_API, True),
        (["read_job"], Scope.READ_JOB, True),
        (["read_job"], Scope.DELETE_JOB, False),
    ],
)
def test_internal_token_scopes(scopes: list[str] | None, scope: Scope, allowed: bool) -> None:
    assert internal_scopes_allow(scopes, scope) is allowed
