"""The built-in `python3` job type: a Racetrack Python job class served by Trackside's runtime.

Loaded by the plugin engine exactly as an installed job type bundle is (docs/architecture.md,
"The plugin interface"). `build_local`
serves the local target; `Dockerfile.j2` with `image.prepare_image` builds the image for container
targets.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from trackside.build.images import ContainerJobType
from trackside.build.jobtype import JobType, JobTypeImage
from trackside.build.jobtypes.python3.image import DEFAULT_BASE_IMAGE, TEMPLATE, prepare_image
from trackside.build.jobtypes.python3.local import JOB_TYPE_NAME, JOB_TYPE_VERSION, build_local
from trackside.build.jobtypes.python3.requirements import PackageIndexes

if TYPE_CHECKING:
    from trackside.config import Settings

__all__ = ["Plugin", "build_local"]


class Plugin:
    plugin_manifest: dict[str, Any] = {"name": "python3-job-type", "version": "1.0.0", "category": "job-type"}
    settings: Settings | None = None  # set by the PluginEngine before any hook is called

    def job_types(self) -> dict[str, JobType]:
        # Package indexes are the operator's settings, bound here: a job's build never chooses them.
        indexes = PackageIndexes.from_settings(self.settings)
        return {
            f"{JOB_TYPE_NAME}:{JOB_TYPE_VERSION}": ContainerJobType(
                name=JOB_TYPE_NAME,
                version=JOB_TYPE_VERSION,
                local_builder=functools.partial(build_local, indexes=indexes),
                images=[JobTypeImage(source="jobtype", template=TEMPLATE)],
                prepare_image=functools.partial(prepare_image, indexes=indexes),
                default_base_image=DEFAULT_BASE_IMAGE,
            )
        }
