"""The typed pipeline: what `validation.parse_pipeline` makes of a body the schema accepted.

Step kinds: a container step (`image` + `run`, on an executor) or a `call` step (a deployed job called
through the gateway). Jobs are kept in a stable topological order: by level (the longest dependency
path above a job), then in the order the pipeline lists them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trackside.pipelines.conditions import Condition

DEFAULT_CALL_PATH = "/api/v1/perform"


@dataclass(frozen=True)
class Dependency:
    job: str
    condition: Condition = Condition.SUCCESS


@dataclass(frozen=True)
class Backoff:
    seconds: float = 1.0
    factor: float = 2.0
    max_seconds: float = 300.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt `attempt + 1`, after attempt `attempt` (1-based) failed."""
        return float(min(self.max_seconds, self.seconds * self.factor ** max(0, attempt - 1)))


@dataclass(frozen=True)
class Retry:
    limit: int = 0  # retries after the first attempt
    backoff: Backoff = field(default_factory=Backoff)


@dataclass(frozen=True)
class CallSpec:
    job: str
    version: str = "latest"
    path: str = DEFAULT_CALL_PATH
    method: str = "POST"
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobSpec:
    name: str
    image: str | None = None
    run: str | None = None
    call: CallSpec | None = None
    depends_on: tuple[Dependency, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    executor: str = "call"  # resolved: "call" for call steps, else the container executor's name
    timeout_seconds: float | None = None
    retry: Retry = field(default_factory=Retry)
    allow_failure: bool = False

    @property
    def is_call(self) -> bool:
        return self.call is not None


@dataclass(frozen=True)
class Subscription:
    """Who hears about a run's events: a `log`, a `webhook` or a plugin `notifier`."""

    kind: str  # log | webhook | plugin
    on: frozenset[str]  # event types; empty: all
    scope: frozenset[str] = frozenset({"run", "job"})
    url: str = ""
    secret: str = ""
    notifier: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    def wants(self, event_type: str, scope: str) -> bool:
        return (not self.on or event_type in self.on) and scope in self.scope


@dataclass(frozen=True)
class PipelineSpec:
    jobs: dict[str, JobSpec]  # in topological order
    levels: dict[str, int]
    params: dict[str, Any] = field(default_factory=dict)
    parallelism: int | None = None
    timeout_seconds: float | None = None
    notifications: tuple[Subscription, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def order(self) -> list[str]:
        return list(self.jobs)
