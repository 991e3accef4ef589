"""Racetrack's purge score: how likely a job version is to be dead weight.

Each sign of neglect lowers a score from 0; `purge_score` is its negation, so higher means "more
worth deleting" and the portfolio sorts by it, descending.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY_S = 86400.0


def clamp(value: float) -> float:
    return min(max(value, 0.0), 1.0)


@dataclass(frozen=True)
class PurgeVerdict:
    score: float
    reasons: list[str]


def purge_verdict(
    status: str, update_time: float, last_call_time: float | None, newer_versions: int, now: float
) -> PurgeVerdict:
    score = 0.0
    reasons: list[str] = []
    if status == "lost":
        score -= 50
        reasons.append("the job is lost: its infrastructure no longer has it")
    elif status == "error":
        score -= 20
        reasons.append("the job is failing")
    updated_days = (now - update_time) / DAY_S
    if updated_days >= 1:
        if last_call_time is None:
            score -= 10
            reasons.append(f"never called, updated {int(updated_days)} days ago")
        else:
            call_days = (now - last_call_time) / DAY_S
            if call_days > 1:
                score -= 10 * clamp(call_days / 30)
                reasons.append(f"last called {int(call_days)} days ago")
    if newer_versions > 0:
        score -= 5 * clamp(newer_versions / 5)
        reasons.append(f"{newer_versions} newer version{'s' if newer_versions != 1 else ''} exist")
    return PurgeVerdict(round(-score, 2) + 0.0, reasons)
