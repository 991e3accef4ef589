"""The `job.yaml` schema: Racetrack's manifest fields with their meaning, validated strictly.

Every model forbids unknown fields, as Racetrack's schema does, so a typo is an error naming the
field instead of a silently ignored setting. Legacy spellings (`lang`, `python`, `golang`,
`docker`, `wrapper_properties`) are accepted and normalized to `jobtype` / `jobtype_extra`, with a
warning kept on the manifest (`manifest.warnings`).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from trackside.errors import InvalidInput
from trackside.manifest.versions import SEMVER_RE

# Set by the platform in every job's environment (docs/architecture.md, "The job contract").
INJECTED_ENV_VARS: frozenset[str] = frozenset(
    {
        "PUB_URL",
        "JOB_NAME",
        "JOB_VERSION",
        "AUTH_TOKEN",
        "JOB_DEPLOYMENT_TIMESTAMP",
        "REQUEST_TRACING_HEADER",
        "JOB_MANIFEST_YAML",
        "PORT",
        "JOB_HOST",
        "PYTHONPATH",
    }
)

# Deprecated aliases of `jobtype_extra`, in the order Racetrack documents them.
LEGACY_EXTRA_FIELDS: tuple[str, ...] = ("python", "golang", "docker", "wrapper_properties")

_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_EMAIL_RE = re.compile(r"^.+@.+$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JOBTYPE_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*):([A-Za-z0-9*][A-Za-z0-9_.*+-]*)$")
# Kubernetes quantity: a decimal number with an optional binary or decimal SI suffix or exponent.
_QUANTITY_RE = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_QUANTITY_FACTORS: dict[str, float] = {
    "": 1,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
NAME_MAX_LENGTH = 63


def _scalar_to_str(value: Any) -> Any:
    """YAML turns `1`, `1.5` and `true` into numbers and booleans; env values and versions are text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def parse_quantity(quantity: str) -> float:
    """A Kubernetes quantity (`512Mi`, `250m`, `1.5`) as a plain number of bytes or cores."""
    match = _QUANTITY_RE.match(quantity)
    if match is None:
        raise ValueError(f"'{quantity}' is not a Kubernetes quantity (e.g. 512Mi, 1Gi, 250m, 2)")
    number = float(match.group(1))
    suffix = match.group(3) or ""
    if suffix[:1] in ("e", "E"):
        return number * float(10 ** int(suffix[1:]))
    return number * _QUANTITY_FACTORS[suffix]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GitConfig(_Strict):
    """Where the job's source lives. Local paths and file:// are accepted for tests and air-gapped use."""

    remote: str
    branch: str | None = None
    directory: str = "."

    @field_validator("remote")
    @classmethod
    def _check_remote(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("git remote must not be empty")
        if value.startswith(("https://", "http://", "file://", "/", "./", "../", "~")):
            return value
        if value.startswith("ssh://") or re.match(r"^[\w.-]+@[\w.-]+:", value):
            raise ValueError(f"'{value}' is an SSH remote; use an https:// URL (credentials are given separately)")
        if "://" in value:
            raise ValueError(f"'{value}': unsupported URL scheme; use https://, http:// or file://")
        # A bare relative path such as `jobs/adder`.
        return value

    @field_validator("directory")
    @classmethod
    def _check_directory(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.replace("\\", "/").split("/"):
            raise ValueError(f"'{value}' must be a relative path inside the repository")
        return value or "."


class ResourcesConfig(_Strict):
    """Kubernetes-style requests and limits; targets apply their own defaults when unset."""

    memory_min: str | None = None
    memory_max: str | None = None
    cpu_min: str | None = None
    cpu_max: str | None = None

    @field_validator("memory_min", "memory_max", "cpu_min", "cpu_max", mode="before")
    @classmethod
    def _check_quantity(cls, value: Any) -> Any:
        value = _scalar_to_str(value)
        if isinstance(value, str):
            parse_quantity(value)
        return value

    @model_validator(mode="after")
    def _check_ranges(self) -> ResourcesConfig:
        for kind in ("memory", "cpu"):
            low, high = getattr(self, f"{kind}_min"), getattr(self, f"{kind}_max")
            if low is not None and high is not None and parse_quantity(low) > parse_quantity(high):
                raise ValueError(f"resources.{kind}_min ({low}) is greater than resources.{kind}_max ({high})")
        return self

    @property
    def memory_min_bytes(self) -> int | None:
        return None if self.memory_min is None else int(parse_quantity(self.memory_min))

    @property
    def memory_max_bytes(self) -> int | None:
        return None if self.memory_max is None else int(parse_quantity(self.memory_max))

    @property
    def cpu_min_cores(self) -> float | None:
        return None if self.cpu_min is None else parse_quantity(self.cpu_min)

    @property
    def cpu_max_cores(self) -> float | None:
        return None if self.cpu_max is None else parse_quantity(self.cpu_max)


class PythonJobExtra(_Strict):
    """`jobtype_extra` of the python3 job type (Racetrack's plugin-python-job-type)."""

    entrypoint_path: str
    entrypoint_class: str | None = None
    requirements_path: str | None = None
    python_version: str = "3.11"
    debian_version: str = "slim-bullseye"
    debian_backports: bool = False
    check_requirements: bool = True
    memray_profiler: bool = False
    home_page: str | None = None
    max_concurrency: int | None = Field(default=None, ge=1)
    max_concurrency_queue: int | None = Field(default=None, ge=0)
    # Trackside's own: whether the job's venv sees the packages Racetrack's wrapper brings (fastapi,
    # pydantic, ...); unset = decided by the job type (docs/racetrack-compat.md).
    racetrack_compat: bool | None = None

    @field_validator("python_version", "debian_version", mode="before")
    @classmethod
    def _to_str(cls, value: Any) -> Any:
        return _scalar_to_str(value)

    @field_validator("entrypoint_path")
    @classmethod
    def _check_entrypoint(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("entrypoint_path must not be empty")
        return value


def format_validation_error(exc: ValidationError, source: str, prefix: str = "") -> str:
    """One line per problem: `SOURCE: field 'a.b': what is wrong` / `SOURCE: unknown field 'x'`."""
    lines = []
    for error in exc.errors(include_url=False):
        path = prefix
        for part in error["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                path = f"{path}.{part}" if path else str(part)
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        elif message.startswith("Assertion failed, "):
            message = message[len("Assertion failed, ") :]
        if error["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown field '{path}'")
        elif path:
            lines.append(f"{source}: field '{path}': {message}")
        else:
            lines.append(f"{source}: {message}")
    return "\n".join(lines)


def validate_python_extra(extra: dict[str, Any] | None, source: str = "manifest") -> PythonJobExtra:
    """Typed view of the python3 `jobtype_extra`; InvalidInput names `jobtype_extra.<field>`."""
    if extra is None:
        raise InvalidInput(
            f"{source}: field 'jobtype_extra.entrypoint_path': Field required "
            "(the python3 job type needs jobtype_extra with entrypoint_path)"
        )
    try:
        return PythonJobExtra.model_validate(extra)
    except ValidationError as exc:
        raise InvalidInput(format_validation_error(exc, source, prefix="jobtype_extra")) from None


class Manifest(_Strict):
    """A job's `job.yaml` (docs/architecture.md, "Compatibility contracts"). Construct through `parse_manifest` for
    friendly errors."""

    name: str
    owner_email: str
    git: GitConfig | None = None
    version: str = "0.0.1"
    jobtype: str | None = None
    lang: str | None = None  # deprecated alias of jobtype
    extends: str | None = None
    image_type: str = "docker"
    system_dependencies: list[str] | None = None
    build_env: dict[str, str] | None = None
    runtime_env: dict[str, str] | None = None
    secret_build_env_file: str | None = None
    secret_runtime_env_file: str | None = None
    labels: dict[str, Any] | None = None
    public_endpoints: list[str] | None = None
    replicas: int = Field(default=1, ge=1, le=50)
    resources: ResourcesConfig | None = None
    jobtype_extra: dict[str, Any] | None = None
    python: dict[str, Any] | None = None  # deprecated alias of jobtype_extra
    golang: dict[str, Any] | None = None  # deprecated alias of jobtype_extra
    docker: dict[str, Any] | None = None  # deprecated alias of jobtype_extra
    wrapper_properties: dict[str, Any] | None = None  # deprecated alias of jobtype_extra
    infrastructure_target: str | None = None
    # Trackside: pass the caller's own token (the X-Racetrack-Auth header and cookie) on to this job,
    # for jobs that call others on the caller's behalf. Off: the gateway strips it (docs/security.md).
    forward_caller_token: bool = False

    _warnings: list[str] = PrivateAttr(default_factory=list)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if "_" in value:
            raise ValueError(f"'{value}' contains '_'; job names may not contain underscores (use '-')")
        if len(value) > NAME_MAX_LENGTH:
            raise ValueError(f"'{value}' is longer than {NAME_MAX_LENGTH} characters")
        if not _NAME_RE.match(value):
            raise ValueError(
                f"'{value}' is not a valid job name: use lowercase letters, digits and '-', "
                "starting and ending with a letter or digit"
            )
        return value

    @field_validator("owner_email")
    @classmethod
    def _check_email(cls, value: str) -> str:
        if not _EMAIL_RE.match(value):
            raise ValueError(f"'{value}' is not an email address")
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _check_version(cls, value: Any) -> Any:
        value = _scalar_to_str(value)
        if isinstance(value, str) and not SEMVER_RE.match(value):
            raise ValueError(f"'{value}' is not a valid SemVer version (expected MAJOR.MINOR.PATCH[-label])")
        return value

    @field_validator("jobtype", "lang")
    @classmethod
    def _check_jobtype(cls, value: str | None) -> str | None:
        if value is not None and not _JOBTYPE_RE.match(value):
            raise ValueError(
                f"'{value}' is not a job type reference; expected NAME:VERSION, e.g. python3:latest or python3:2.*"
            )
        return value

    @field_validator("image_type")
    @classmethod
    def _check_image_type(cls, value: str) -> str:
        if value != "docker":
            raise ValueError(f"'{value}' is not supported; the only image_type is 'docker'")
        return value

    @field_validator("build_env", "runtime_env", mode="before")
    @classmethod
    def _env_values_to_str(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: _scalar_to_str(val) for key, val in value.items()}
        return value

    @field_validator("build_env", "runtime_env")
    @classmethod
    def _check_env_names(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key in value or {}:
            check_env_name(key)
        return value

    @field_validator("public_endpoints")
    @classmethod
    def _check_public_endpoints(cls, value: list[str] | None) -> list[str] | None:
        for endpoint in value or []:
            if not endpoint.startswith("/"):
                raise ValueError(f"'{endpoint}' must be a path starting with '/', e.g. /api/v1/perform")
        return value

    @model_validator(mode="after")
    def _normalize_legacy(self) -> Manifest:
        warnings: list[str] = []
        if self.lang is not None:
            if self.jobtype is not None and self.jobtype != self.lang:
                raise ValueError(
                    f"'jobtype' ({self.jobtype}) and its deprecated alias 'lang' ({self.lang}) disagree; "
                    "keep only 'jobtype'"
                )
            warnings.append("field 'lang' is deprecated; use 'jobtype' instead")
            self.jobtype = self.lang
            self.lang = None
        if self.jobtype is None:
            raise ValueError("field 'jobtype' is required (NAME:VERSION, e.g. python3:latest)")
        given = [name for name in LEGACY_EXTRA_FIELDS if getattr(self, name) is not None]
        if given:
            if self.jobtype_extra is not None or len(given) > 1:
                fields = ", ".join(f"'{name}'" for name in (["jobtype_extra"] if self.jobtype_extra else []) + given)
                raise ValueError(f"fields {fields} are aliases of each other; keep only 'jobtype_extra'")
            legacy = given[0]
            warnings.append(f"field '{legacy}' is deprecated; use 'jobtype_extra' instead")
            self.jobtype_extra = getattr(self, legacy)
            setattr(self, legacy, None)
        self._warnings = warnings
        return self

    @property
    def warnings(self) -> list[str]:
        """Deprecation notices found while validating (legacy spellings, legacy file names)."""
        return self._warnings

    @property
    def jobtype_name(self) -> str:
        return (self.jobtype or "").split(":", 1)[0]

    @property
    def jobtype_version(self) -> str:
        return (self.jobtype or "").split(":", 1)[1] if ":" in (self.jobtype or "") else ""

    @property
    def python_extra(self) -> PythonJobExtra:
        return validate_python_extra(self.jobtype_extra)

    @property
    def git_directory(self) -> str:
        return self.git.directory if self.git else "."


def check_env_name(name: str) -> None:
    """Raise ValueError when `name` is not a usable env var name or is injected by the platform."""
    if not _ENV_NAME_RE.match(name):
        raise ValueError(f"'{name}' is not a valid environment variable name")
    if name in INJECTED_ENV_VARS:
        raise ValueError(f"'{name}' is set by the platform and cannot be overridden")
