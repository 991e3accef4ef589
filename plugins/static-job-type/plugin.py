"""Job type `static:1.0.0`: a job made of HTML and assets, served over HTTP.

job.yaml:

    jobtype: static:1.0.0
    jobtype_extra:
      root: public        # directory to serve, relative to the job's source (default: the source itself)
      index: index.html   # file served for a directory (default index.html)

On the local target the build copies `static_server.py` (stdlib only) next to the build and runs it
with the platform's Python. Container targets use `Dockerfile.jinja` with this plugin's directory as
the `jobtype` build context.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from trackside.build.artifacts import LocalArtifact
from trackside.build.jobtype import BuildRequest, JobType, JobTypeImage
from trackside.errors import BuildFailed, InvalidInput

NAME = "static"
VERSION = "1.0.0"
HERE = Path(__file__).resolve().parent
EXTRA_FIELDS = {"root", "index"}


def _extra(manifest: Any) -> dict[str, Any]:
    return dict(getattr(manifest, "jobtype_extra", None) or {})


def build_local(request: BuildRequest) -> LocalArtifact:
    extra = _extra(request.manifest)
    workspace = request.workspace.resolve()
    root = (workspace / str(extra.get("root", "."))).resolve()
    try:
        root.relative_to(workspace)
    except ValueError:
        raise BuildFailed(f"jobtype_extra.root {extra.get('root')!r} points outside the job's source") from None
    if not root.is_dir():
        raise BuildFailed(f"jobtype_extra.root {extra.get('root', '.')!r}: no such directory in the job's source")
    index = str(extra.get("index", "index.html"))
    files = sum(1 for p in root.rglob("*") if p.is_file())
    request.log(f"static site: {files} file(s) in {root.relative_to(workspace).as_posix() or '.'}")
    server = request.artifact_dir / "static_server.py"
    server.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / "static_server.py", server)  # the job keeps working if the plugin goes
    return LocalArtifact(
        command=[sys.executable, str(server), "--root", str(root), "--index", index],
        cwd=str(workspace),
        env={"PYTHONUNBUFFERED": "1", "JOB_TYPE_VERSION": f"{NAME}:{VERSION}"},
        job_type_version=VERSION,
    )


class Plugin:
    def job_types(self) -> dict[str, JobType]:
        return {
            f"{NAME}:{VERSION}": JobType(
                name=NAME,
                version=VERSION,
                images=[
                    JobTypeImage(
                        source="jobtype", dockerfile_path="Dockerfile.jinja", template=HERE / "Dockerfile.jinja"
                    )
                ],
                local_builder=build_local,
            )
        }

    def validate_job_manifest(self, manifest: Any, job_type: str) -> None:
        if not job_type.startswith(f"{NAME}:"):
            return
        unknown = sorted(set(_extra(manifest)) - EXTRA_FIELDS)
        if unknown:
            raise InvalidInput(
                f"job type {job_type}: unknown jobtype_extra field(s) {', '.join(unknown)}"
                f" (known: {', '.join(sorted(EXTRA_FIELDS))})"
            )

    def markdown_docs(self) -> str:
        return (
            "# static job type\n\n"
            "Serves a directory of HTML and assets. Use `jobtype: static:1.0.0` and optionally "
            "`jobtype_extra: {root: public, index: index.html}`.\n"
        )
