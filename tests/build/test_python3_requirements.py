"""A job's requirements file reaches nothing outside the job, and package indexes are the platform's.

The installs here use a PEP 503 index on loopback (serving a tiny wheel) as the platform's index, and a
second one as the attacker's, which records whether the build ever asked it anything.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.plugins.support import tiny_wheel

from trackside.build.artifacts import LocalArtifact
from trackside.build.jobtype import BuildRequest
from trackside.build.jobtypes.python3 import Plugin
from trackside.build.jobtypes.python3.requirements import PackageIndexes, make_safe
from trackside.config import Settings
from trackside.errors import BuildFailed

JOB = "import tinydep\n\nclass Job:\n    def perform(self):\n        return tinydep.VALUE\n"
WHEEL_NAME = "tinydep-0.1-py3-none-any.whl"
SECRET = "PLATFORM-KEY-6a1f0c"


class Index:
    """A simple index on 127.0.0.1 serving tinydep (or nothing), keeping every path asked for."""

    def __init__(self, serve: bool) -> None:
        self.requests: list[str] = []
        wheel = tiny_wheel()
        digest = hashlib.sha256(wheel).hexdigest()
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:  # noqa: N802
                self.answer(with_body=False)

            def do_GET(self) -> None:  # noqa: N802
                self.answer(with_body=True)

            def answer(self, with_body: bool) -> None:
                index.requests.append(self.path)
                if serve and self.path.rstrip("/") == "/simple/tinydep":
                    body = f'<a href="/files/{WHEEL_NAME}#sha256={digest}">{WHEEL_NAME}</a>'.encode()
                    content_type = "text/html"
                elif serve and self.path == f"/files/{WHEEL_NAME}":
                    body, content_type = wheel, "application/octet-stream"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.base}/simple"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def platform_index() -> Iterator[Index]:
    index = Index(serve=True)
    yield index
    index.close()


@pytest.fixture
def evil_index() -> Iterator[Index]:
    index = Index(serve=False)
    yield index
    index.close()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "auth.key").write_text(f"{SECRET}\n")
    return path


class Log(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)

    def text(self) -> str:
        return "\n".join(self)


def build(
    tmp_path: Path,
    make_manifest: Any,
    files: dict[str, str | bytes],
    log: Log,
    index: Index | None = None,
    build_env: dict[str, str] | None = None,
    **settings: Any,
) -> LocalArtifact:
    """A local build of a job directory holding `files`, by the python3 plugin with these settings."""
    job = tmp_path / "job"
    for name, content in files.items():
        path = job / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    plugin = Plugin()
    plugin.settings = Settings(data_dir=tmp_path / "data", package_index_url=index.url if index else "", **settings)
    manifest = make_manifest(jobtype_extra={"entrypoint_path": "job.py"}, build_env=build_env or None)
    request = BuildRequest(
        manifest=manifest, workspace=job, artifact_dir=tmp_path / "build", cache_dir=tmp_path / "cache", log=log
    )
    return plugin.job_types()["python3:1.0.0"].build_local(request)


def imported_value(artifact: LocalArtifact) -> str:
    result = subprocess.run(
        [artifact.command[0], "-c", "import tinydep; print(tinydep.VALUE)"], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


# --- includes stay inside the job -----------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "-r {outside}/auth.key",
        "-r ../outside/auth.key",
        "--requirement=../outside/auth.key",
        "-c ../outside/auth.key",
        "-r linked/auth.key",
        "-r ${HOME}/.trackside/auth.key",
        "-r https://example.com/requirements.txt",
    ],
)
def test_an_include_outside_the_job_fails_the_build_and_never_reads_the_file(
    tmp_path: Path, outside: Path, make_manifest: Any, line: str
) -> None:
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "linked").symlink_to(outside)
    log = Log()
    requirements = line.replace("{outside}", str(outside)) + "\n"
    with pytest.raises(BuildFailed, match=r"^requirements.txt:1: .* inside the job's directory") as caught:
        build(tmp_path, make_manifest, {"job.py": JOB, "requirements.txt": requirements}, log)
    assert SECRET not in caught.value.message and SECRET not in log.text()


def test_includes_inside_the_job_are_inlined_so_the_installer_reads_no_file_itself(tmp_path: Path) -> None:
    (tmp_path / "reqs").mkdir()
    (tmp_path / "requirements.txt").write_text("six==1.17.0\n-r reqs/base.txt  # shared\n-c reqs/pins.txt\n")
    (tmp_path / "reqs" / "base.txt").write_text("idna \\\n  >=3\n-r ../requirements.txt\n")
    (tmp_path / "reqs" / "pins.txt").write_text("idna==3.10\n")
    safe = make_safe(tmp_path / "requirements.txt", tmp_path, PackageIndexes(), lambda line: None)
    assert safe.requirements == ["six==1.17.0", "idna >=3"]
    assert safe.constraints == ["idna==3.10"]


@pytest.mark.parametrize(
    "line",
    ["file:///etc/passwd", "pkg @ file:///etc/hostname", "-e /etc", "../outside", "./linked/x.whl", "~/pkg"],
)
def test_local_paths_outside_the_job_are_refused(tmp_path: Path, outside: Path, line: str) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "linked").symlink_to(outside)
    (job / "requirements.txt").write_text(line + "\n")
    with pytest.raises(BuildFailed, match=r"^requirements.txt:1: .* inside the job's directory"):
        make_safe(job / "requirements.txt", job, PackageIndexes(), lambda line: None)


def test_environment_variables_are_allowed_only_inside_direct_urls(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("lib @ git+https://${GIT_TOKEN}@git.example.com/lib.git\n")
    safe = make_safe(tmp_path / "requirements.txt", tmp_path, PackageIndexes(), lambda line: None)
    assert safe.requirements == ["lib @ git+https://${GIT_TOKEN}@git.example.com/lib.git"], "kept for uv to expand"
    for line in ("./${PKG}", "pkg @ ${URL}", "-e ${DIR}"):
        (tmp_path / "requirements.txt").write_text(line + "\n")
        with pytest.raises(BuildFailed, match="environment variables are only allowed in direct URLs"):
            make_safe(tmp_path / "requirements.txt", tmp_path, PackageIndexes(), lambda line: None)


# --- package indexes are the platform's ---------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        "--index-url {evil}",
        "-i {evil}",
        "-i{evil}",
        "--extra-index-url={evil}",
        "--find-links {base}/files/",
        "-f {base}/files/",
        "--trusted-host 127.0.0.1",
        "--no-index",
    ],
)
def test_index_options_in_a_job_are_refused_logged_and_the_platform_index_is_used(
    tmp_path: Path, make_manifest: Any, platform_index: Index, evil_index: Index, option: str
) -> None:
    log = Log()
    line = option.format(evil=evil_index.url, base=evil_index.base)
    files = {"job.py": JOB, "requirements.txt": f"{line}\ntinydep==0.1\n"}
    artifact = build(tmp_path, make_manifest, files, log, index=platform_index)
    assert imported_value(artifact) == "42"
    assert evil_index.requests == [], "the job's index was never asked"
    assert "/simple/tinydep/" in platform_index.requests
    name = line.split("=")[0].split()[0][:2] if line.startswith("-i") or line.startswith("-f") else line.split("=")[0]
    refused = [entry for entry in log if "refused" in entry]
    assert refused == [
        f"requirements.txt:1: option {name.split()[0]} refused: package indexes are the platform's "
        "(package_index_url, package_extra_index_urls, package_find_links)"
    ]


def test_a_uv_config_in_the_job_directory_is_not_read(
    tmp_path: Path, make_manifest: Any, platform_index: Index, evil_index: Index
) -> None:
    files = {
        "job.py": JOB,
        "requirements.txt": "tinydep==0.1\n",
        "uv.toml": f'index-url = "{evil_index.url}"\n[pip]\nindex-url = "{evil_index.url}"\n',
    }
    artifact = build(tmp_path, make_manifest, files, Log(), index=platform_index)
    assert imported_value(artifact) == "42"
    assert evil_index.requests == []


def test_installer_settings_in_the_build_env_are_refused_and_logged(
    tmp_path: Path, make_manifest: Any, platform_index: Index, evil_index: Index
) -> None:
    log = Log()
    env = {"UV_INDEX_URL": evil_index.url, "PIP_INDEX_URL": evil_index.url, "MODE": "fast"}
    files = {"job.py": JOB, "requirements.txt": "tinydep==0.1\n"}
    artifact = build(tmp_path, make_manifest, files, log, index=platform_index, build_env=env)
    assert imported_value(artifact) == "42"
    assert evil_index.requests == []
    assert any(line.startswith("build env UV_INDEX_URL refused") for line in log)
    assert any(line.startswith("build env PIP_INDEX_URL refused") for line in log)


def test_platform_find_links_reach_the_installer(tmp_path: Path, make_manifest: Any, evil_index: Index) -> None:
    # The platform's index here serves nothing: tinydep can only come from its find-links directory.
    wheels = tmp_path / "platform-wheels"
    wheels.mkdir()
    (wheels / WHEEL_NAME).write_bytes(tiny_wheel())
    files = {"job.py": JOB, "requirements.txt": "tinydep==0.1\n"}
    artifact = build(tmp_path, make_manifest, files, Log(), index=evil_index, package_find_links=[str(wheels)])
    assert imported_value(artifact) == "42"


# --- direct URLs ----------------------------------------------------------------------------------


def test_direct_url_requirements_are_allowed_unless_the_operator_refuses_them(
    tmp_path: Path, make_manifest: Any, platform_index: Index
) -> None:
    line = f"tinydep @ {platform_index.base}/files/{WHEEL_NAME}\n"
    files = {"job.py": JOB, "requirements.txt": line}
    assert imported_value(build(tmp_path / "a", make_manifest, files, Log(), index=platform_index)) == "42"
    with pytest.raises(BuildFailed, match=r"^requirements.txt:1: direct URL and VCS requirements are refused"):
        build(tmp_path / "b", make_manifest, files, Log(), index=platform_index, allow_direct_requirements=False)


def test_a_wheel_inside_the_job_directory_is_a_fine_local_requirement(
    tmp_path: Path, make_manifest: Any, evil_index: Index
) -> None:
    files = {"job.py": JOB, "requirements.txt": f"./wheels/{WHEEL_NAME}\n", f"wheels/{WHEEL_NAME}": tiny_wheel()}
    assert imported_value(build(tmp_path, make_manifest, files, Log(), index=evil_index)) == "42"
