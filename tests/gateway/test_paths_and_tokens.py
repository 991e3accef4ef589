"""Job path parsing and token extraction, the two inputs of every routing decision."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackside.gateway.paths import JobTarget, PathRefused, parse_job_path
from trackside.gateway.tokens import extract_token


def test_job_path_splits_into_name_version_and_path() -> None:
    assert parse_job_path("/pub/job/adder/1.2.3/api/v1/perform") == JobTarget("adder", "1.2.3", "/api/v1/perform")
    assert parse_job_path("/pub/job/adder/latest") == JobTarget("adder", "latest", "")
    assert parse_job_path("/pub/job/adder/1.x/") == JobTarget("adder", "1.x", "/")
    assert parse_job_path("/pub/fatman/adder/0.0.1/x") == JobTarget("adder", "0.0.1", "/x")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/pub/job/", 404),
        ("/pub/job/adder", 404),
        ("/pub/job//1.0.0/x", 404),
        ("/pub/job/adder%2F1.0.0/x", 400),
        ("/pub/job/..%2Fother/1.0.0", 400),
        ("/pub/job/a\\b/1.0.0", 400),
        ("/pub/job/../1.0.0/x", 400),
        ("/pub/job/adder/../x", 400),
        ("/pub/job/adder/1.0.0/a/../../b", 400),
        ("/pub/job/adder/1.0.0/%2E%2e/b", 400),
    ],
)
def test_bad_job_paths_are_refused_with_the_reason(path: str, status: int) -> None:
    with pytest.raises(PathRefused) as refused:
        parse_job_path(path)
    assert refused.value.status_code == status
    assert repr(path) in refused.value.message


@given(st.text(alphabet="abc./%2Ff\\-_", max_size=30))
def test_no_job_path_smuggles_a_slash_or_dot_segment_into_the_name_or_version(tail: str) -> None:
    try:
        target = parse_job_path("/pub/job/" + tail)
    except PathRefused:
        return
    for part in (target.name, target.version):
        assert "/" not in part and "%" not in part and "\\" not in part and part not in (".", "..")
    assert ".." not in target.path.split("/")
    assert "//" not in target.path


def test_token_precedence_header_cookie_bearer_legacy() -> None:
    everything = {
        b"x-racetrack-auth": b"from-header",
        b"cookie": b"a=1; X-Racetrack-Auth=from%2Bcookie",
        b"authorization": b"Bearer from-bearer",
        b"x-racetrack-user-auth": b"from-legacy",
    }
    assert extract_token(everything) == "from-header"
    del everything[b"x-racetrack-auth"]
    assert extract_token(everything) == "from+cookie"
    del everything[b"cookie"]
    assert extract_token(everything) == "from-bearer"
    del everything[b"authorization"]
    assert extract_token(everything) == "from-legacy"
    assert extract_token({b"x-racetrack-esc-auth": b"esc"}) == "esc"
    assert extract_token({b"authorization": b"Basic abc"}) is None
    assert extract_token({b"cookie": b"other=1"}) is None
    assert extract_token({}) is None
