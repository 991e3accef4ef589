"""The `docker` executor: each attempt is a container on a Docker engine, through the same client code
as the docker target (`trackside.infra.docker.engine.DockerEngine`).

`docker run -d --pull never` (or `missing` when the operator allows pulls) with the step's labels and
a name unique to the attempt, so a restarted platform finds its containers by name and re-attaches:
they keep running while the platform is down. Images are mapped through `pipeline_images` first (an
air-gapped engine has no `busybox`; the operator maps it to an image the engine has), and a missing
image is the attempt's error, naming the image and the setting, never a pull from the internet.
Containers are removed once their outcome and log are recorded. Environment values go to the client
through its environment (`-e NAME`), never its command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import Mapping

from trackside.errors import TracksideError
from trackside.infra.docker.engine import DockerEngine
from trackside.pipelines.executors.base import ExecutorUnavailable, Handle, StepLaunch, StepOutcome

NAME = "docker"


class DockerExecutor:
    name = NAME

    def __init__(
        self,
        engine: DockerEngine,
        images: Mapping[str, str] | None = None,
        pull: bool = False,
        network: str = "host",
    ) -> None:
        self.engine = engine
        self.images = dict(images or {})
        self.pull = pull
        self.network = network
        self._present: set[str] = set()

    def image_for(self, image: str) -> str:
        return self.images.get(image, image)

    async def _run(self, args: list[str], env: dict[str, str] | None = None, check: bool = True) -> str:
        try:
            result = await asyncio.to_thread(self.engine.run, args, env, None, check)
        except TracksideError as exc:
            raise ExecutorUnavailable(exc.message) from None
        return str(result.stdout)

    async def _ensure_image(self, image: str) -> None:
        if image in self._present or self.pull:
            return
        if await asyncio.to_thread(self.engine.image_exists, image):
            self._present.add(image)
            return
        raise ExecutorUnavailable(
            f"image {image} is not on the Docker engine {self.engine.url} and pulling is off "
            "(map the name to a local image in pipeline_images, or allow pulls with pipeline_docker_pull)"
        )

    async def launch(self, launch: StepLaunch) -> Handle:
        image = self.image_for(launch.image)
        await self._ensure_image(image)
        args = ["run", "-d", "--name", launch.name, "--network", self.network]
        args += ["--pull", "missing" if self.pull else "never"]
        for key, value in launch.labels.items():
            args += ["--label", f"{key}={value}"]
        for key in launch.env:
            args += ["-e", key]
        args += ["--entrypoint", "sh", image, "-c", launch.command]
        container = (await self._run(args, env=dict(launch.env))).strip()
        return {"container": container or launch.name, "name": launch.name, "image": image}

    async def attach(self, launch: StepLaunch, handle: Handle | None) -> Handle | None:
        ref = (handle or {}).get("container") or launch.name
        out = await self._run(["inspect", "--format", "{{.Id}}", ref], check=False)
        container = out.strip()
        if not container:
            return None
        return {**(handle or {}), "container": container, "name": launch.name}

    async def _pump_logs(self, launch: StepLaunch, container: str) -> None:
        """`docker logs -f` into the log file, from the start (a re-attach rewrites it whole)."""
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(launch.log_path, "wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                *self.engine.command(["logs", "-f", container]),
                env=self.engine._environment(None, buildkit=False),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )
            try:
                await process.wait()
            finally:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()

    async def wait(self, launch: StepLaunch, handle: Handle) -> StepOutcome:
        container = str(handle["container"])
        pump = asyncio.create_task(self._pump_logs(launch, container))
        try:
            process = await asyncio.create_subprocess_exec(
                *self.engine.command(["wait", container]),
                env=self.engine._environment(None, buildkit=False),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            try:
                out, err = await process.communicate()
            finally:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
            if process.returncode != 0:
                return StepOutcome(None, f"lost the container {handle.get('name')}: {err.decode(errors='replace')}")
            code = int(out.decode().strip().splitlines()[-1])
            details = await self._state(container) if code != 0 else {}  # why it failed: OOM?
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(pump), 10)
            if details.get("OOMKilled"):
                return StepOutcome(code, "the container ran out of memory (OOM killed)", details)
            return StepOutcome(code, details=details)
        finally:
            if not pump.done():
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump

    async def _state(self, container: str) -> dict[str, object]:
        out = await self._run(["inspect", "--format", "{{json .State}}", container], check=False)
        try:
            state = json.loads(out) if out.strip() else {}
        except ValueError:
            return {}
        return {k: state.get(k) for k in ("ExitCode", "OOMKilled", "Error") if k in state}

    async def kill(self, launch: StepLaunch, handle: Handle) -> None:
        await self._run(["kill", str(handle["container"])], check=False)

    async def release(self, launch: StepLaunch, handle: Handle) -> None:
        await self._run(["rm", "-f", str(handle["container"])], check=False)
