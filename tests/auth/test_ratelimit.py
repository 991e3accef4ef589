"""Failed logins slow down per account and per address, and the refusal says so."""

from __future__ import annotations

import pytest

from trackside.auth.ratelimit import LoginThrottle, TooManyAttempts


def test_free_failures_then_a_refusal_that_says_why_and_how_long() -> None:
    throttle = LoginThrottle(free_failures=3, base_delay=60, free_address_failures=3)
    for _ in range(3):
        throttle.check("alice", "10.0.0.1")
        throttle.failed("alice", "10.0.0.1")
    throttle.check("alice", "10.0.0.1")  # the 4th attempt is still free: the delay starts after it fails
    throttle.failed("alice", "10.0.0.1")
    with pytest.raises(TooManyAttempts) as caught:
        throttle.check("alice", "10.0.0.2")
    assert caught.value.status_code == 429
    assert "account 'alice'" in caught.value.message and "slowed down" in caught.value.message
    with pytest.raises(TooManyAttempts) as by_address:
        throttle.check("bob", "10.0.0.1")
    assert "address 10.0.0.1" in by_address.value.message


def test_a_success_clears_the_account_count() -> None:
    throttle = LoginThrottle(free_failures=1, base_delay=60)
    throttle.failed("alice", "a")
    throttle.succeeded("alice")
    throttle.failed("alice", "b")
    throttle.check("alice", "c")
