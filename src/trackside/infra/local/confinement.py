"""How the local target keeps its jobs away from the platform's files: the mode in force, per replica.

Three modes (the `local_confinement` setting; "auto" picks the first that works here):

- `users` (the platform runs as root): each replica runs as an unprivileged user of its own
  (`uids.py`), in a private mount namespace where the data dir, the replica directories of other jobs
  and every directory its user could not enter anyway are covered by empty tmpfs mounts, with only the
  job's own build, virtualenv and interpreter mounted back (read-only) and its replica directory
  (`replica_dirs.py`, writable). Elsewhere it reads what any unprivileged local user may read.
- `landlock` (an unprivileged platform, Linux 5.13+): a Landlock ruleset lets the replica read the
  system's directories (/usr, /etc, ...) and its own build, virtualenv and interpreter, write its
  replica directory and /dev, and nothing else; with ABI 6+ it can't signal processes outside it.
  The kernel also refuses it the platform's /proc files (environment, memory, fds).
- `none`: the job runs as the platform's user and can read all it can. Said loudly at start.

The platform starts each confined replica through `sandbox.py`, which applies the plan built here
in the replica's own process and then execs the job; the pid, environment and log file stay the same.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trackside.errors import InvalidInput
from trackside.infra.local import sandbox
from trackside.infra.local.replica_dirs import (
    ReplicaDirs,
    default_jobs_dir,
    fill_replica_dirs,
    new_replica_dirs,
    remove_replica_dirs,
)
from trackside.infra.local.uids import UidPool

if TYPE_CHECKING:
    from trackside.config import Settings
    from trackside.infra.local.state import ReplicaState

log = logging.getLogger(__name__)
# What a job can reach is said at every start, whatever level the platform logs at otherwise.
log.setLevel(logging.INFO)

SANDBOX_SCRIPT = Path(sandbox.__file__).resolve()
# What a job may read under Landlock besides its own files: the system, not anyone's data.
SYSTEM_READ_PATHS = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/opt",
    "/proc",
    "/sys",
    "/run/systemd/resolve",  # /etc/resolv.conf points here where systemd-resolved runs
)
SYSTEM_WRITE_PATHS = ("/dev",)  # /dev/null, /dev/shm, ...; device files keep their own modes
PROBE_TIMEOUT_S = 30.0


class Mode(enum.Enum):
    USERS = "users"
    LANDLOCK = "landlock"
    NONE = "none"


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def readable_outside(paths: list[Path], hidden: list[Path]) -> list[Path]:
    """`paths`, with any that holds a hidden path replaced by its entries minus the hidden ones."""
    result: list[Path] = []
    for path in paths:
        if any(_is_within(path, h) for h in hidden):
            continue
        if not any(_is_within(h, path) for h in hidden):
            result.append(path)
            continue
        try:
            children = sorted(path.iterdir())
        except OSError:
            continue
        result += readable_outside(children, hidden)
    return result


def first_closed_ancestor(path: Path) -> Path | None:
    """The highest directory above `path` that users other than its owner and group can't enter."""
    for ancestor in reversed(path.parents):
        try:
            mode = ancestor.stat().st_mode
        except OSError:
            return ancestor
        if not mode & stat.S_IXOTH:
            return ancestor
    return None


def readable_by_others(root: Path) -> None:
    """Let other users read `root`'s tree (o+rX), when a restrictive umask made it private.

    Only for the job's own build and virtualenv inside the data dir: the data dir itself stays 0700
    and hidden from other jobs, so this opens them to their job's user alone.
    """
    if root.stat().st_mode & 0o005 == 0o005:
        return  # made under the usual umask: readable already
    for directory, _, files in os.walk(root):
        for path in [directory, *(os.path.join(directory, f) for f in files)]:
            with contextlib.suppress(OSError):
                mode = os.lstat(path).st_mode
                if not stat.S_ISLNK(mode):
                    extra = 0o005 if stat.S_ISDIR(mode) or mode & 0o100 else 0o004
                    os.chmod(path, stat.S_IMODE(mode) | extra)


def _venv_home(venv: Path) -> Path | None:
    try:
        lines = (venv / "pyvenv.cfg").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "home" and value.strip():
            return Path(value.strip())
    return None


def _pth_dirs(venv: Path) -> list[Path]:
    """Directories the venv's `.pth` files put on `sys.path` (e.g. the racetrack-compat layer, which
    lives in the shared build cache): the job must read them, or its imports fail inside the box."""
    dirs: list[Path] = []
    for pth in sorted(venv.glob("lib/python*/site-packages/*.pth")):
        try:
            lines = pth.read_text().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            line = line.strip()
            # `import ...` lines run code rather than name a directory; relative lines stay in the venv.
            if line and os.path.isabs(line) and os.path.isdir(line):
                dirs.append(Path(os.path.abspath(line)))
    return dirs


def program_paths(command: list[str], env: dict[str, str], cwd: Path | None = None) -> list[Path]:
    """What running `command` needs to read besides the system: its virtualenv and its interpreter."""
    if not command:
        return []
    name = command[0]
    if cwd is not None and "/" in name and not os.path.isabs(name):
        name = str(cwd / name)
    found = shutil.which(name, path=env.get("PATH", os.defpath))
    if found is None:
        return []
    program = Path(os.path.abspath(found))
    paths: list[Path] = []
    interpreters = [program.resolve()]
    venv = program.parent.parent
    if (venv / "pyvenv.cfg").is_file():
        paths.append(venv)
        paths += _pth_dirs(venv)
        home = _venv_home(venv)
        if home is not None:
            interpreters.append(home.resolve() / "python")
    for interpreter in interpreters:
        prefix = interpreter.parent.parent  # PREFIX/bin/python -> PREFIX, with its lib/
        if prefix != Path("/"):
            paths.append(prefix)
    return _minimal(paths)


def private_view(read: list[Path], write: list[Path], hidden: list[Path]) -> dict[str, Any]:
    """The mount view (`sandbox.py`'s "view") in which an unprivileged user reads `read`, writes
    `write` and can't see `hidden`: every hidden path, and the highest closed directory above each
    path it needs, is covered; the needed paths under a cover are mounted back at their own place."""
    covers = list(hidden)
    for path in [*read, *write]:
        closed = first_closed_ancestor(path)
        if closed is not None:
            covers.append(closed)
    covers = _minimal([c for c in covers if c.is_dir()])  # nothing to hide where nothing is
    binds = [
        [str(p), writable]
        for paths, writable in ((read, False), (write, True))
        for p in paths
        if any(_is_within(p, c) for c in covers) and p.exists()
    ]
    return {"covers": [str(c) for c in covers], "binds": binds}


def _minimal(paths: list[Path]) -> list[Path]:
    """`paths` without duplicates and without those inside another one."""
    unique = sorted(set(paths), key=lambda p: len(p.parts))
    result: list[Path] = []
    for path in unique:
        if not any(_is_within(path, kept) for kept in result):
            result.append(path)
    return result


@dataclass
class Confinement:
    mode: Mode
    data_dir: Path
    jobs_dir: Path
    uids: UidPool | None = None
    landlock_abi: int = 0
    read_paths: list[Path] = field(default_factory=list)
    requested: str = "auto"
    reason: str = ""  # why a weaker mode than asked for is in force

    # ----- choosing ---------------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: Settings) -> Confinement:
        """The mode the settings ask for, or under "auto" the strongest that works on this host.

        Raises InvalidInput when an explicitly requested mode can't be used here.
        """
        requested = settings.local_confinement
        data_dir = Path(os.path.abspath(settings.data_dir))
        jobs_dir = Path(os.path.abspath(settings.local_jobs_dir or default_jobs_dir(data_dir)))
        if _is_within(jobs_dir, data_dir) or _is_within(data_dir, jobs_dir):
            raise InvalidInput(f"setting local_jobs_dir ({jobs_dir}) must be outside the data dir ({data_dir})")
        base = cls(
            Mode.NONE,
            data_dir,
            jobs_dir,
            read_paths=[Path(os.path.abspath(p)) for p in settings.local_job_read_paths],
            requested=requested,
        )
        reasons: list[str] = []
        if requested in ("auto", "users"):
            pool = UidPool(settings.local_job_first_uid, settings.local_job_uid_count, settings.local_uid_claims_dir)
            why_not = base._users_unavailable(pool)
            if why_not is None:
                base.mode, base.uids = Mode.USERS, pool
                return base
            if requested == "users":
                raise InvalidInput(f"local_confinement is 'users' but {why_not}")
            reasons.append(why_not)
        if requested in ("auto", "landlock"):
            abi = sandbox.landlock_abi()
            if abi >= 1:
                base.mode, base.landlock_abi = Mode.LANDLOCK, abi
                base.reason = "; ".join(reasons)
                return base
            why_not = "this kernel offers no Landlock (Linux 5.13+ with landlock in its LSM list)"
            if requested == "landlock":
                raise InvalidInput(f"local_confinement is 'landlock' but {why_not}")
            reasons.append(why_not)
        base.reason = "; ".join(reasons) if reasons else "local_confinement is 'none'"
        return base

    def _users_unavailable(self, pool: UidPool) -> str | None:
        if os.geteuid() != 0:
            return "the platform does not run as root, so it can't give jobs users of their own"
        try:
            pool.ready()
        except OSError as exc:
            return f"the uid claims directory {pool.claims_dir} can't be made: {exc}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        spec = {"uid": pool.first, "gid": pool.first, "view": {"covers": [str(self.data_dir)], "binds": []}}
        try:
            probe = subprocess.run(
                self._launcher(spec, []),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"the sandbox could not be tried: {exc}"
        if probe.returncode != 0:
            return f"a private mount namespace can't be made here ({(probe.stderr or probe.stdout).strip()})"
        return None

    def describe(self) -> str:
        """The start-up line saying what a job on this target can reach."""
        if self.mode is Mode.USERS:
            assert self.uids is not None
            return (
                f"local target: jobs run as unprivileged users of their own (uids {self.uids.describe()}), "
                f"each in a private mount namespace where the data dir {self.data_dir} is hidden; "
                f"working directories under {self.jobs_dir}"
            )
        if self.mode is Mode.LANDLOCK:
            root = " (the platform runs as root: jobs keep root's uid)" if os.geteuid() == 0 else ""
            return (
                f"local target: jobs are confined by Landlock (ABI {self.landlock_abi}){root}: they read the "
                f"system's directories and their own build, write only their working directory under "
                f"{self.jobs_dir}; the data dir {self.data_dir} is out of their reach"
            )
        return (
            f"local target: NO CONFINEMENT OF JOBS ({self.reason}): every job runs as this platform's user "
            f"(uid {os.geteuid()}) and can read everything it can, the data dir {self.data_dir} with its "
            "keys, admin password and database included, and so forge tokens. Run the platform as root, "
            "on a kernel with Landlock, or use the docker target for code you do not trust."
        )

    def announce(self) -> None:
        if self.mode is Mode.NONE or (self.mode is Mode.LANDLOCK and os.geteuid() == 0):
            log.warning(self.describe())
        else:
            log.info(self.describe())
        if self.reason and self.mode is not Mode.NONE:
            log.info("local target: not using a stronger confinement because %s", self.reason)

    # ----- per replica ------------------------------------------------------------------------

    def prepare(self, name: str, version: str, index: int, source: Path | None) -> tuple[ReplicaDirs, int | None]:
        """A new replica's directory (with `source`'s entries linked in) and, in users mode, its uid."""
        dirs = new_replica_dirs(self.jobs_dir, name, version, index)
        uid = None
        try:
            if self.uids is not None:
                uid = self.uids.claim(dirs.root)
            fill_replica_dirs(dirs, source, uid)
        except BaseException:
            self.release(str(dirs.root), uid)
            raise
        return dirs, uid

    def release(self, home: str, uid: int | None) -> None:
        """Delete a replica's directory and give its uid back (its processes have stopped)."""
        if home:
            remove_replica_dirs(Path(home))
        if uid is not None and self.uids is not None and home:
            self.uids.release(uid, Path(home))

    def command(self, state: ReplicaState, build_dir: Path) -> list[str]:
        """The command that starts the replica's process: the job's own, through the sandbox if any."""
        spec = self.plan(state, build_dir)
        if spec is None:
            return list(state.command)
        if self.mode is Mode.USERS:
            for path, _ in spec["view"]["binds"]:
                if _is_within(Path(path), self.data_dir):
                    readable_by_others(Path(path))
        return self._launcher(spec, state.command)

    def plan(self, state: ReplicaState, build_dir: Path) -> dict[str, Any] | None:
        """What `sandbox.py` sets up for this replica (None when nothing is confined)."""
        if self.mode is Mode.NONE:
            return None
        dirs = ReplicaDirs(Path(state.home))
        hidden = [self.data_dir, self.jobs_dir]
        wanted = [build_dir, *program_paths(state.command, state.env, dirs.work), *self.read_paths]
        # Never one that holds a hidden directory: the data dir is never readable as a whole.
        read = _minimal([p for p in wanted if not any(_is_within(h, p) for h in hidden)])
        write = [dirs.root]
        if self.mode is Mode.USERS:
            assert state.uid is not None
            return {
                "uid": state.uid,
                "gid": state.uid,
                "view": private_view(read, write, hidden),
                "cwd": str(dirs.work),
            }
        system = readable_outside([Path(p) for p in SYSTEM_READ_PATHS if os.path.exists(p)], hidden)
        return {
            "landlock": {
                "read": [str(p) for p in [*system, *read]],
                "write": [str(p) for p in [*write, *(Path(p) for p in SYSTEM_WRITE_PATHS)]],
            },
            "cwd": str(dirs.work),
        }

    def _launcher(self, spec: dict[str, Any], command: list[str]) -> list[str]:
        return [sys.executable, "-I", "-S", str(SANDBOX_SCRIPT), json.dumps(spec), "--", *command]
