"""The built-in `dockerfile` job type: any language, built from the job's own Dockerfile.

The job's source is the build context and `jobtype_extra.dockerfile_path` (default `Dockerfile`)
names the Dockerfile. The program must serve the job contract itself (docs/architecture.md, "The
job contract"): listen on `PORT` (7000 by default) on all interfaces, answer `/live` with
`deployment_timestamp` from `JOB_DEPLOYMENT_TIMESTAMP`, `/ready`, and its API. Image targets only:
there is nothing to build for the local target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trackside.build.jobtype import JobType, JobTypeImage

if TYPE_CHECKING:
    from trackside.config import Settings

__all__ = ["JOB_TYPE_NAME", "JOB_TYPE_VERSION", "Plugin"]

JOB_TYPE_NAME = "dockerfile"
JOB_TYPE_VERSION = "1.0.0"


class Plugin:
    plugin_manifest: dict[str, Any] = {"name": "dockerfile-job-type", "version": "1.0.0", "category": "job-type"}
    settings: Settings | None = None  # set by the PluginEngine before any hook is called

    def job_types(self) -> dict[str, JobType]:
        return {
            f"{JOB_TYPE_NAME}:{JOB_TYPE_VERSION}": JobType(
                name=JOB_TYPE_NAME, version=JOB_TYPE_VERSION, images=[JobTypeImage(source="job")]
            )
        }

    def validate_job_manifest(self, manifest: Any, job_type: str) -> None:
        if not job_type.startswith(f"{JOB_TYPE_NAME}:"):
            return
        extra = dict(getattr(manifest, "jobtype_extra", None) or {})
        unknown = set(extra) - {"dockerfile_path"}
        if unknown:
            raise ValueError(
                f"manifest: field 'jobtype_extra.{sorted(unknown)[0]}' is not an option of the dockerfile job type "
                "(only dockerfile_path)"
            )
        path = extra.get("dockerfile_path", "Dockerfile")
        if not isinstance(path, str) or not path.strip():
            raise ValueError("manifest: field 'jobtype_extra.dockerfile_path' must be a non-empty path")
