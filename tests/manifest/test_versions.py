"""SemVer ordering and Racetrack's version aliases (`latest`, `1.x`, `1.2.*`)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackside.manifest.versions import (
    SemVer,
    is_semver,
    is_version_pattern,
    resolve_job_version,
    resolve_jobtype_version,
    try_parse,
    version_sort_key,
)

JOB_VERSIONS = [
    "0.0.1",
    "1.0.0",
    "1.2.0",
    "1.2.9",
    "1.10.0",
    "1.11.0-rc.1",
    "2.0.0-alpha",
    "10.0.0-dev",
    "1.2.10",
]


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("latest", "1.10.0"),  # 2.0.0-alpha and 10.0.0-dev are unstable
        ("1.x", "1.10.0"),
        ("1.2.x", "1.2.10"),  # numeric, not lexical: 1.2.10 > 1.2.9
        ("0.x", "0.0.1"),
        ("0.0.x", "0.0.1"),
        ("2.x", None),  # only 2.0.0-alpha, which is unstable
        ("3.x", None),
        ("1.2.9", "1.2.9"),
        ("2.0.0-alpha", "2.0.0-alpha"),  # exact matches may be unstable
        ("1.2", None),
        ("9.9.9", None),
    ],
)
def test_resolve_job_version_table(requested: str, expected: str | None) -> None:
    assert resolve_job_version(requested, JOB_VERSIONS) == expected


def test_resolve_job_version_with_nothing_available() -> None:
    assert resolve_job_version("latest", []) is None
    assert resolve_job_version("latest", ["1.0.0-rc1"]) is None


def test_x_matches_one_or_more_characters_not_a_prefix() -> None:
    assert resolve_job_version("1.x", ["10.0.0", "1.0.0"]) == "1.0.0"
    assert resolve_job_version("1.x", ["10.0.0"]) is None


JOBTYPE_VERSIONS = [
    "1.2.0",
    "1.2.3",
    "1.3.0-3.9-bullseye",
    "1.3.4-3.9-bullseye",
    "1.3.4-3.11-bookworm",
    "1.3.5",
    "2.0.0-rc1",
    "1.2.11-dev",
]


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("latest", "2.0.0-rc1"),  # job types: latest includes unstable versions
        ("1.2.*", "1.2.11-dev"),  # wildcards may match unstable
        ("1.3.*-3.9-bullseye", "1.3.4-3.9-bullseye"),
        ("1.3.*-3.11-bookworm", "1.3.4-3.11-bookworm"),
        ("1.*", "1.3.5"),
        ("3.*", None),
        ("1.2.3", "1.2.3"),
        ("1.2.x", None),  # x is not a job-type wildcard
        ("1.2.4", None),
    ],
)
def test_resolve_jobtype_version_table(requested: str, expected: str | None) -> None:
    assert resolve_jobtype_version(requested, JOBTYPE_VERSIONS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("latest", True),
        ("1.x", True),
        ("1.2.x", True),
        ("x", True),
        ("1.2.*", True),
        ("1.3.*-3.9-bullseye", True),
        ("1.2.3", False),
        ("1.0.0-xyz", False),
        ("0.0.1-x", False),
        ("", False),
    ],
)
def test_is_version_pattern(text: str, expected: bool) -> None:
    assert is_version_pattern(text) is expected


def test_prerelease_sorts_below_release_and_labels_lexically() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-beta",
        "1.0.0-beta.11",
        "1.0.0-beta.2",
        "1.0.0",
        "1.0.1-a",
    ]
    assert sorted(reversed(ordered), key=version_sort_key) == ordered


def test_parse_rejects_non_semver() -> None:
    for text in ["1.0", "1.0.0.0", "v1.0.0", "01.0.0", "1.0.0-", "latest"]:
        assert try_parse(text) is None and not is_semver(text)
    with pytest.raises(ValueError, match="'1.0' is not a valid SemVer"):
        SemVer.parse("1.0")


_numbers = st.integers(min_value=0, max_value=10_000)
_word = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=5).filter(
    lambda w: not w.isdigit() or w == "0" or not w.startswith("0")
)
_label = st.lists(_word, min_size=1, max_size=3).map(".".join)
_versions = st.builds(SemVer, _numbers, _numbers, _numbers, st.one_of(st.just(""), _label))


@given(_versions)
def test_str_and_parse_round_trip(version: SemVer) -> None:
    assert SemVer.parse(str(version)) == version


@given(_versions, _versions)
def test_order_is_total_and_antisymmetric(a: SemVer, b: SemVer) -> None:
    assert (a < b) + (a == b) + (a > b) == 1
    assert (a <= b) == (not a > b)


@given(_versions, _versions, _versions)
def test_order_is_transitive(a: SemVer, b: SemVer, c: SemVer) -> None:
    if a <= b and b <= c:
        assert a <= c


@given(_versions, _label)
def test_prerelease_is_below_its_release(version: SemVer, label: str) -> None:
    release = SemVer(version.major, version.minor, version.patch)
    assert SemVer(version.major, version.minor, version.patch, label) < release


@given(_versions, _versions)
def test_release_order_is_numeric_order(a: SemVer, b: SemVer) -> None:
    if a.is_stable and b.is_stable:
        assert (a < b) == ((a.major, a.minor, a.patch) < (b.major, b.minor, b.patch))


@given(st.lists(_versions, max_size=12))
def test_latest_is_the_highest_stable_version(versions: list[SemVer]) -> None:
    texts = [str(v) for v in versions]
    stable = [v for v in versions if v.is_stable]
    expected = str(max(stable)) if stable else None
    assert resolve_job_version("latest", texts) == expected
    assert resolve_jobtype_version("latest", texts) == (str(max(versions)) if versions else None)


@given(st.lists(_versions, max_size=12), st.integers(min_value=0, max_value=10_000))
def test_major_x_pattern_picks_highest_stable_with_that_major(versions: list[SemVer], major: int) -> None:
    texts = [str(v) for v in versions]
    matching = [v for v in versions if v.is_stable and v.major == major]
    assert resolve_job_version(f"{major}.x", texts) == (str(max(matching)) if matching else None)
