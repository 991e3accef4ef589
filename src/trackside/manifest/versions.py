"""SemVer parsing, ordering and Racetrack's version aliases.

Racetrack resolves job versions (`latest`, `1.x`) and job-type versions (`latest`, `1.2.*`) by slightly different rules
(docs/architecture.md, "Compatibility contracts"); both are kept here so the gateway, lifecycle and build agree on one
implementation. Ordering follows Racetrack, not semver.org: a pre-release sorts below its release and pre-release
labels compare as plain strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# The regex suggested by semver.org.
SEMVER_PATTERN = (
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
SEMVER_RE = re.compile(rf"^{SEMVER_PATTERN}$")

# `1.x`, `1.2.x`, `x`: numeric parts and at least one `x`, no label.
_X_PATTERN_RE = re.compile(r"^(?:\d+|x)(?:\.(?:\d+|x)){0,2}$")

LATEST = "latest"


@dataclass(frozen=True)
class SemVer:
    """A parsed version; compare with `sort_key` (or the rich comparisons, which use it)."""

    major: int
    minor: int
    patch: int
    prerelease: str = ""
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer:
        """Parse `text`; ValueError says which string was not SemVer."""
        match = SEMVER_RE.match(text)
        if match is None:
            raise ValueError(f"'{text}' is not a valid SemVer version (expected MAJOR.MINOR.PATCH[-label])")
        major, minor, patch, pre, build = match.groups()
        return cls(int(major), int(minor), int(patch), pre or "", build or "")

    @property
    def is_stable(self) -> bool:
        return not self.prerelease

    @property
    def sort_key(self) -> tuple[int, int, int, int, str, str]:
        # Build metadata does not change precedence; it only breaks ties so the order is total.
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, self.prerelease, self.build)

    def __lt__(self, other: SemVer) -> bool:
        return self.sort_key < other.sort_key

    def __le__(self, other: SemVer) -> bool:
        return self.sort_key <= other.sort_key

    def __gt__(self, other: SemVer) -> bool:
        return self.sort_key > other.sort_key

    def __ge__(self, other: SemVer) -> bool:
        return self.sort_key >= other.sort_key

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += f"-{self.prerelease}"
        if self.build:
            text += f"+{self.build}"
        return text


def try_parse(text: str) -> SemVer | None:
    """The parsed version, or None when `text` is not SemVer."""
    try:
        return SemVer.parse(text)
    except ValueError:
        return None


def is_semver(text: str) -> bool:
    return SEMVER_RE.match(text) is not None


def version_sort_key(text: str) -> tuple[int, int, int, int, str, str]:
    """Sort key for version strings; non-SemVer strings sort first (below 0.0.0-anything)."""
    parsed = try_parse(text)
    if parsed is None:
        return (-1, -1, -1, 0, text, "")
    return parsed.sort_key


def is_x_pattern(text: str) -> bool:
    """`1.x`, `1.2.x`: Racetrack's job-version wildcards."""
    return "x" in text and _X_PATTERN_RE.match(text) is not None


def is_wildcard_pattern(text: str) -> bool:
    """`1.2.*`, `1.3.*-3.9-bullseye`: Racetrack's job-type-version wildcards."""
    return "*" in text


def is_version_pattern(text: str) -> bool:
    """True for anything that is resolved against available versions instead of matched exactly."""
    return text == LATEST or is_x_pattern(text) or is_wildcard_pattern(text)


def _pattern_regex(pattern: str, wildcard: str) -> re.Pattern[str]:
    # The wildcard matches one or more characters, everything else literally.
    parts = [re.escape(part) for part in pattern.split(wildcard)]
    return re.compile("^" + ".+".join(parts) + "$")


def _highest(candidates: Iterable[str], *, stable_only: bool) -> str | None:
    best: tuple[SemVer, str] | None = None
    for text in candidates:
        parsed = try_parse(text)
        if parsed is None or (stable_only and not parsed.is_stable):
            continue
        if best is None or parsed > best[0]:
            best = (parsed, text)
    return best[1] if best else None


def resolve_job_version(requested: str, available: Iterable[str]) -> str | None:
    """Racetrack's job version alias: `latest` and `1.x` pick the highest *stable* version."""
    versions = list(available)
    if requested == LATEST:
        return _highest(versions, stable_only=True)
    if is_x_pattern(requested):
        regex = _pattern_regex(requested, "x")
        return _highest((v for v in versions if regex.match(v)), stable_only=True)
    return requested if requested in versions else None


def resolve_jobtype_version(requested: str, available: Iterable[str]) -> str | None:
    """Racetrack's job-type alias: `latest` and `*` patterns pick the highest version, unstable included."""
    versions = list(available)
    if requested == LATEST:
        return _highest(versions, stable_only=False)
    if is_wildcard_pattern(requested):
        regex = _pattern_regex(requested, "*")
        return _highest((v for v in versions if regex.match(v)), stable_only=False)
    return requested if requested in versions else None
