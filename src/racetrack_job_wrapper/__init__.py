"""Racetrack's job-wrapper API for jobs that run on Trackside (`from racetrack_job_wrapper.call import call_job`).

Racetrack's python3 jobs import a few names from the `racetrack_job_wrapper` package that its runner
(`racetrack-job-runner`) provides. Trackside serves those jobs with its own runtime, and ships this
small package beside it so the same imports work: `call`, `entrypoint`, `log.logs.get_logger`. It
holds no logic of its own: everything delegates to the runtime (`trackside_runtime` inside a job,
`trackside.runtime` where Trackside is installed). Like the runtime, it imports only the standard
library, because it runs inside the job's own virtualenv. See docs/racetrack-compat.md.
"""

from __future__ import annotations
