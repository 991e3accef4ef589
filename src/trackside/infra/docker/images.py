"""A Docker target's declared ability to build the images it runs, on its own engine.

The image is built where it will run, so a remote engine needs no registry round trip; with a registry
configured it is pushed too, for engines that pull. Every image carries the platform's identity label,
so cleaning images never touches another platform's on a shared engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trackside.build.images import build_job_image
from trackside.build.spec import BuildSpec
from trackside.infra.base import ImageBuilder
from trackside.infra.docker.engine import DockerEngine
from trackside.infra.docker.naming import LABEL_PLATFORM

if TYPE_CHECKING:
    from trackside.config import Settings


class DockerImageBuilder(ImageBuilder):
    def __init__(self, engine: DockerEngine, platform_id: str) -> None:
        self.engine = engine
        self.platform_id = platform_id

    def build_image(self, spec: BuildSpec, settings: Settings) -> str:
        return build_job_image(spec, self.engine, settings, labels={LABEL_PLATFORM: self.platform_id})
