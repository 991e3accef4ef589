"""Failed logins slow down per account and per address, and the refusal says so."""

from __future__ import annotations

import pytest

from trackside.auth.ratelimit import LoginThrottle, TooManyAttempts


def test_free_failures_then_a_refusal_that_says_why_and_how_long() -> None:
    throttle = LoginThrottle(free_failures=3, base_delay=60, free_address_failures=3)
    for _ in range(3):
        throttle.check("alice", "10.0.0.1")
        throttle.failed("alice", "10.0.0.1")
    # After 3 failures the 4th attempt already waits: refused before any password is checked.
    with pytest.raises(TooManyAttempts) as caught:
        throttle.check("alice", "10.0.0.2")
    assert caught.value.status_code == 429
    assert "account 'alice'" in caught.value.message and "slowed down" in caught.value.message
    assert "try again in 60 s" in caught.value.message
    with pytest.raises(TooManyAttempts) as by_address:
        throttle.check("bob", "10.0.0.1")
    assert "address 10.0.0.1" in by_address.value.message


def test_the_defaults_refuse_exactly_the_attempt_docs_auth_md_names() -> None:
    """docs/auth.md: after 5 failed logins for an account (20 for one address), each further attempt waits 5 s."""
    throttle = LoginThrottle()
    for attempt in range(1, 6):
        throttle.check("alice", f"10.0.0.{attempt}")  # attempts 1-5 are checked normally
        throttle.failed("alice", f"10.0.0.{attempt}")
    with pytest.raises(TooManyAttempts) as sixth:
        throttle.check("alice", "10.0.0.6")
    assert "try again in 5 s" in sixth.value.message

    for attempt in range(1, 21):
        throttle.check(f"user-{attempt}", "192.0.2.1")
        throttle.failed(f"user-{attempt}", "192.0.2.1")
    with pytest.raises(TooManyAttempts) as twenty_first:
        throttle.check("user-21", "192.0.2.1")
    assert "address 192.0.2.1" in twenty_first.value.message


def test_the_wait_doubles_per_further_failure_up_to_the_maximum() -> None:
    throttle = LoginThrottle(free_failures=1, base_delay=5, max_delay=12, free_address_failures=100)
    waits = []
    for _ in range(4):
        throttle.failed("alice", "a")
        with pytest.raises(TooManyAttempts) as caught:
            throttle.check("alice", "a")
        waits.append(caught.value.message.rsplit("try again in ", 1)[1])
    assert waits == ["5 s", "10 s", "12 s", "12 s"]


def test_a_success_clears_the_account_count() -> None:
    throttle = LoginThrottle(free_failures=2, base_delay=60)
    throttle.failed("alice", "a")
    throttle.succeeded("alice")
    throttle.failed("alice", "b")
    throttle.check("alice", "c")  # one failure since the success: below the 2 free ones
    throttle.failed("alice", "c")
    with pytest.raises(TooManyAttempts):
        throttle.check("alice", "d")
