"""Everything refused at `POST /api/runs` (400), before a run exists.

chainr accepted unknown dependencies, cycles and names Kubernetes refuses, and failed the run later
(reference 1.1); we refuse them up front, naming the job. Checks, in order: the JSON Schema; then each
job: `call` xor `image`+`run`, its name (a Kubernetes label value: at most 63 characters,
`[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, so it can be part of a container's name), its dependencies
(known, not itself), its executor (known and enabled here), its `${{ }}` expressions (declared params,
outputs of its own upstream jobs only); then cycles over the whole graph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from trackside.errors import InvalidInput
from trackside.pipelines.conditions import Condition
from trackside.pipelines.outputs import references
from trackside.pipelines.schema import schema_errors
from trackside.pipelines.spec import Backoff, CallSpec, Dependency, JobSpec, PipelineSpec, Retry, Subscription

NAME_PATTERN = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
NAME_MAX = 63


class PipelineInvalid(InvalidInput):
    """A pipeline refused at submission; `problems` are the individual messages (joined by ", ")."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(", ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ExecutorPolicy:
    """Which executors this server offers for container steps, and which one is the default."""

    default: str = "docker"
    available: frozenset[str] = frozenset({"docker"})
    disabled_reasons: dict[str, str] = field(default_factory=dict)  # name -> why it can't be used here

    def check(self, name: str) -> str | None:
        if name in self.available:
            return None
        if name in self.disabled_reasons:
            return self.disabled_reasons[name]
        known = ", ".join(sorted(self.available | set(self.disabled_reasons))) or "none"
        return f"unknown executor {name!r} (this server has: {known})"


def _condition(raw: dict[str, Any] | None, where: str, problems: list[str]) -> Condition:
    raw = raw or {}
    on = raw.get("on")
    failure = raw.get("failure")
    if on is not None and failure is not None:
        expected = Condition.FAILURE if failure else Condition.SUCCESS
        if Condition(on) != expected:
            problems.append(f"{where}/conditions: failure {str(failure).lower()} contradicts on {on!r}")
        return Condition(on)
    if on is not None:
        return Condition(on)
    return Condition.FAILURE if failure else Condition.SUCCESS


def _subscriptions(raw: list[dict[str, Any]], where: str, problems: list[str]) -> tuple[Subscription, ...]:
    found = []
    for index, item in enumerate(raw):
        kinds = [k for k in ("log", "webhook", "notifier") if item.get(k)]
        if len(kinds) != 1:
            problems.append(f"{where}/{index}: give exactly one of log, webhook or notifier")
            continue
        kind = {"notifier": "plugin"}.get(kinds[0], kinds[0])
        found.append(
            Subscription(
                kind=kind,
                on=frozenset(item.get("on") or ()),
                scope=frozenset(item.get("scope") or ("run", "job")),
                url=str(item.get("webhook") or ""),
                secret=str(item.get("secret") or ""),
                notifier=str(item.get("notifier") or ""),
                config=dict(item.get("config") or {}),
            )
        )
    return tuple(found)


def parse_subscriptions(raw: Any, where: str = "notifications") -> tuple[Subscription, ...]:
    """Global subscriptions from settings, with the same shape and checks as a pipeline's."""
    if not isinstance(raw, list):
        raise InvalidInput(f"{where}: expected a list of subscriptions")
    problems: list[str] = []
    errors = schema_errors({"kind": "Pipeline", "jobs": {}, "notifications": raw})
    if errors:
        raise PipelineInvalid([e.replace("/notifications", where, 1) for e in errors])
    subscriptions = _subscriptions(raw, where, problems)
    if problems:
        raise PipelineInvalid(problems)
    return subscriptions


def _ancestors(jobs: dict[str, list[str]], name: str) -> set[str]:
    seen: set[str] = set()
    todo = list(jobs.get(name, ()))
    while todo:
        current = todo.pop()
        if current in seen or current not in jobs:
            continue
        seen.add(current)
        todo.extend(jobs[current])
    return seen


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One cycle as a path (first job repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, ()):
            if dep not in graph or dep == node:  # unknown or self: reported on their own
                continue
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def topological_levels(graph: dict[str, list[str]]) -> dict[str, int]:
    """Level of each job (0 for no dependencies, else 1 + the deepest dependency); graph must be acyclic."""
    levels: dict[str, int] = {}

    def level(node: str) -> int:
        if node not in levels:
            deps = [d for d in graph[node] if d in graph]
            levels[node] = 1 + max((level(d) for d in deps), default=-1)
        return levels[node]

    for node in graph:
        level(node)
    return levels


def parse_pipeline(body: Any, policy: ExecutorPolicy | None = None) -> PipelineSpec:
    """The typed pipeline, or PipelineInvalid listing every problem found."""
    policy = policy or ExecutorPolicy()
    if not isinstance(body, dict):
        raise PipelineInvalid([f"/: type should be object, got {type(body).__name__}"])
    errors = schema_errors(body)
    if errors:
        raise PipelineInvalid(errors)
    problems: list[str] = []
    raw_jobs: dict[str, dict[str, Any]] = body["jobs"]
    params = dict(body.get("params") or {})
    pipeline_executor = body.get("executor")
    graph = {name: [d["job"] for d in job.get("dependsOn") or []] for name, job in raw_jobs.items()}
    jobs: dict[str, JobSpec] = {}
    for name, raw in raw_jobs.items():
        where = f"/jobs/{name}"
        if len(name) > NAME_MAX or not NAME_PATTERN.match(name):
            problems.append(
                f"{where}: job name {name!r} cannot be a container name "
                f"(at most {NAME_MAX} letters, digits, '-', '_' or '.', starting and ending with a letter or digit)"
            )
        call_raw = raw.get("call")
        if call_raw is not None and ("image" in raw or "run" in raw):
            problems.append(f"{where}: a job has either call, or image and run, not both")
        elif call_raw is None:
            for key in ("image", "run"):
                if key not in raw:
                    problems.append(f'{where}: "{key}" value is required')
        depends_on = []
        for index, dep in enumerate(raw.get("dependsOn") or []):
            dep_where = f"{where}/dependsOn/{index}"
            if dep["job"] == name:
                problems.append(f"{dep_where}/job: job {name} depends on itself")
            elif dep["job"] not in raw_jobs:
                problems.append(f"{dep_where}/job: job {name} depends on unknown job {dep['job']!r}")
            depends_on.append(Dependency(dep["job"], _condition(dep.get("conditions"), dep_where, problems)))
        call = None
        if call_raw is not None:
            call = CallSpec(
                job=call_raw["job"],
                version=call_raw.get("version", "latest"),
                path="/" + str(call_raw.get("path", CallSpec.path)).lstrip("/"),
                method=call_raw.get("method", "POST"),
                payload=call_raw.get("payload", {}),
                headers=dict(call_raw.get("headers") or {}),
            )
            executor = "call"
            if "executor" in raw:
                problems.append(f"{where}: a call step runs through the gateway; it takes no executor")
        else:
            executor = raw.get("executor") or pipeline_executor or policy.default
            refusal = policy.check(executor)
            if refusal:
                problems.append(f"{where}: {refusal}")
        upstream = _ancestors(graph, name)
        expression_sources = [raw.get("env") or {}]
        if call_raw is not None:
            expression_sources += [call_raw.get("payload"), call_raw.get("path", ""), call_raw.get("headers") or {}]
        try:
            for ref in (r for source in expression_sources for r in references(source)):
                if ref.kind == "params" and ref.name not in params:
                    problems.append(f"{where}: {ref.text} is not a declared param (declare it in params)")
                elif ref.kind == "jobs" and ref.name not in upstream:
                    problems.append(
                        f"{where}: {ref.text} refers to job {ref.name}, which is not upstream of {name} "
                        "(add it to dependsOn)"
                    )
        except InvalidInput as exc:
            problems.append(f"{where}: {exc.message}")
        retry_raw = raw.get("retry") or {}
        backoff_raw = retry_raw.get("backoff") or {}
        retry = Retry(
            limit=int(retry_raw.get("limit", 0)),
            backoff=Backoff(
                seconds=float(backoff_raw.get("seconds", Backoff.seconds)),
                factor=float(backoff_raw.get("factor", Backoff.factor)),
                max_seconds=float(backoff_raw.get("maxSeconds", Backoff.max_seconds)),
            ),
        )
        jobs[name] = JobSpec(
            name=name,
            image=raw.get("image"),
            run=raw.get("run"),
            call=call,
            depends_on=tuple(depends_on),
            env=dict(raw.get("env") or {}),
            executor=executor,
            timeout_seconds=raw.get("timeoutSeconds"),
            retry=retry,
            allow_failure=bool(raw.get("allowFailure", False)),
        )
    if pipeline_executor is not None:
        refusal = policy.check(pipeline_executor)
        if refusal:
            problems.append(f"/executor: {refusal}")
    cycle = _find_cycle(graph)
    if cycle:
        problems.append(f"/jobs/{cycle[0]}: dependency cycle {' -> '.join(cycle)}")
    notifications = _subscriptions(body.get("notifications") or [], "/notifications", problems)
    if problems:
        raise PipelineInvalid(problems)
    levels = topological_levels(graph)
    position = {name: index for index, name in enumerate(raw_jobs)}
    ordered = sorted(jobs, key=lambda n: (levels[n], position[n]))
    return PipelineSpec(
        jobs={name: jobs[name] for name in ordered},
        levels=levels,
        params=params,
        parallelism=body.get("parallelism"),
        timeout_seconds=body.get("timeoutSeconds"),
        notifications=notifications,
        raw=body,
    )


def apply_params(body: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The pipeline with run-time params over its declared defaults; an undeclared one is an error."""
    declared = body.get("params") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise InvalidInput(f"unknown param(s) {', '.join(unknown)}: the pipeline declares {known}")
    if not given:
        return body
    return {**body, "params": {**declared, **given}}
