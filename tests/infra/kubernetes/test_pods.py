"""Which pod states fail a deploy at once, and which the kubelet gets out of by itself."""

from __future__ import annotations

from typing import Any

from trackside.infra.kubernetes.pods import PodState


def waiting_pod(reason: str, message: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "job-adder-0", "labels": {}},
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {"name": "job", "ready": False, "state": {"waiting": {"reason": reason, "message": message}}}
            ],
        },
    }


def test_a_secret_that_does_not_exist_fails_the_pod_at_once() -> None:
    pod = PodState.from_api(waiting_pod("CreateContainerConfigError", 'secret "adder-secrets" not found'))
    assert pod.failure == 'pod job-adder-0: CreateContainerConfigError: secret "adder-secrets" not found'


def test_a_kubelet_cache_not_yet_synced_with_a_new_secret_is_waited_out() -> None:
    message = "failed to sync secret cache: timed out waiting for the condition"
    pod = PodState.from_api(waiting_pod("CreateContainerConfigError", message))
    assert pod.failure is None
    assert pod.describe() == f"pod job-adder-0 is waiting: CreateContainerConfigError ({message})"


def test_an_image_that_cannot_be_pulled_fails_the_pod_at_once() -> None:
    pod = PodState.from_api(waiting_pod("ErrImageNeverPull", 'Container image "x:1" is not present'))
    assert pod.failure == 'pod job-adder-0: ErrImageNeverPull: Container image "x:1" is not present'
