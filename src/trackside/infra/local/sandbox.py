"""Entering a replica's sandbox: the first program a confined replica runs, before it execs the job.

The platform starts `python -I -S sandbox.py SPEC -- COMMAND...` (see `confinement.py`, which writes
SPEC); this program sets up what SPEC asks for in its own process, then replaces itself with COMMAND,
keeping the pid, the environment and the log file the platform gave it:

- `view`: a private mount namespace in which each of `covers` is hidden under an empty tmpfs, and the
  `binds` (directories under a cover that the job needs) are mounted back at their own paths, read-only
  unless marked writable. The covers and the directories leading to the binds are mode 0711: the job
  passes through them but can't list them. The data dir is among the covers, so its files are not
  even there to open.
- `uid`/`gid`: the unprivileged user the job runs as, with no supplementary groups.
- `landlock`: a Landlock ruleset (Linux 5.13+) that lets the job read the `read` trees and write the
  `write` trees, and nothing else of the filesystem; with ABI 6+ it also can't signal or connect to
  the abstract sockets of processes outside its own sandbox. Landlock needs no privilege.

`no_new_privs` is always set: no setuid program can give the job more than it starts with.

It runs with `-I -S` and imports only the standard library: it must start fast, must not read the
job's PYTHON* variables, and must not depend on the platform's installation. Any failure is printed
(into the replica's log) and ends the process with status 126, before the job ever runs.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Any

EXIT_SETUP_FAILED = 126

# Linux syscall numbers of Landlock (the same on every architecture that has it).
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1

# Filesystem access rights, and the ABI version that introduced the last ones.
FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
_FS_ABI1 = (1 << 13) - 1  # execute ... make_sym
_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
READ_RIGHTS = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWNS = 0x00020000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class SetupError(Exception):
    pass


def _libc() -> Any:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _check(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(errno)} (errno {errno})")
    return result


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers, 0 when it has none (or it is disabled)."""
    try:
        libc = _libc()
    except OSError:
        return 0
    flags = _LANDLOCK_CREATE_RULESET_VERSION
    version = int(libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), flags))
    return max(version, 0)


def handled_fs_rights(abi: int) -> int:
    rights = _FS_ABI1
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def apply_landlock(read: list[str], write: list[str]) -> None:
    """Restrict this process (and what it execs) to reading `read` and writing `write`.

    The kernel asks for `no_new_privs` to be set first (`enter` does).
    """
    libc = _libc()
    abi = landlock_abi()
    if abi < 1:
        raise SetupError("Landlock is not available in this kernel")
    handled = handled_fs_rights(abi)
    attr = _RulesetAttr(handled, 0, SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0)
    ruleset = _check(
        libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), 0),
        "landlock_create_ruleset",
    )
    try:
        for paths, rights in ((read, READ_RIGHTS), (write, handled)):
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except (FileNotFoundError, PermissionError):
                    continue  # nothing to grant: what we can't reach, the job can't either
                try:
                    allowed = rights & handled
                    if not os.path.isdir(f"/proc/self/fd/{fd}"):
                        allowed &= _FILE_RIGHTS
                    rule = _PathBeneathAttr(allowed, fd)
                    _check(
                        libc.syscall(
                            _SYS_LANDLOCK_ADD_RULE, ruleset, _LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0
                        ),
                        f"landlock_add_rule {path}",
                    )
                finally:
                    os.close(fd)
        _check(libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def _mount(libc: Any, source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    encoded = [value.encode() if value is not None else None for value in (source, target, fstype, data)]
    _check(libc.mount(encoded[0], encoded[1], encoded[2], ctypes.c_ulong(flags), encoded[3]), f"mount {target}")


def _make_traversable_dirs(path: str) -> None:
    """Make `path` and its missing parents, mode 0711: the job may pass through, not list them."""
    missing: list[str] = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        os.mkdir(directory, 0o711)
        os.chmod(directory, 0o711)  # whatever the umask


def enter_private_view(covers: list[str], binds: list[tuple[str, bool]]) -> None:
    """A mount namespace of our own: each cover hidden under an empty tmpfs, the binds mounted back."""
    libc = _libc()
    _check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE, None)  # nothing we mount leaks to the host
    # Hold each bind's source before its path is covered.
    sources = [(os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), path, writable) for path, writable in binds]
    for cover in sorted(covers, key=len):
        _mount(libc, "tmpfs", cover, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0711,size=64k")
    for fd, path, writable in sorted(sources, key=lambda item: len(item[1])):
        _make_traversable_dirs(path)
        _mount(libc, f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC, None)
        flags = _MS_REMOUNT | _MS_BIND | _MS_NOSUID | _MS_NODEV | (0 if writable else _MS_RDONLY)
        _mount(libc, None, path, None, flags, None)
        os.close(fd)


def become(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def enter(spec: dict[str, Any]) -> None:
    """Apply `spec` to this process (see the module docstring for its keys)."""
    view = spec.get("view")
    if view:
        enter_private_view(list(view["covers"]), [(path, bool(writable)) for path, writable in view["binds"]])
    if spec.get("uid") is not None:
        become(int(spec["uid"]), int(spec["gid"]))
    _check(_libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    landlock = spec.get("landlock")
    if landlock:
        apply_landlock(list(landlock["read"]), list(landlock["write"]))
    if spec.get("cwd"):
        os.chdir(spec["cwd"])


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "--":
        print("usage: sandbox.py SPEC -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    command = argv[2:]
    try:
        enter(json.loads(argv[0]))
    except (SetupError, OSError, ValueError, KeyError, TypeError) as exc:
        print(f"trackside: cannot confine the job: {exc}", file=sys.stderr, flush=True)
        return EXIT_SETUP_FAILED
    if not command:  # a probe: the sandbox could be entered
        return 0
    try:
        os.execvpe(command[0], command, os.environ)
    except OSError as exc:
        print(f"trackside: cannot start {command[0]}: {exc}", file=sys.stderr, flush=True)
    return EXIT_SETUP_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
