"""The local target's builds: build directories, the virtualenvs they run in, and replica states.

A local build (`trackside.build.artifacts`) runs a command from a virtualenv in the data dir's
cache, and the replica state files say which replicas should run. All three are archived, so
the restored platform starts the same replicas from the same builds without rebuilding anything.
Virtualenvs are not relocatable in general, but their interpreter finds them from its own path, so
a restore into another data dir rewrites the old data dir's path in the files that name it
(artifacts, replica states, `.pth` files); replica states also lose their process, directory and
uid, so the restored platform starts each replica afresh in a directory of its own.
"""

from __future__ import annotations

import json
from pathlib import Path

from trackside.backup.archive import ArchiveWriter
from trackside.build.artifacts import ARTIFACT_FILE, build_tag
from trackside.infra.local.layout import LocalLayout

CACHE = ("cache", "venvs")
COMPAT_CACHE = ("cache", "racetrack-compat")


def _relative(data_dir: Path, path: Path) -> str:
    return path.relative_to(data_dir).as_posix()


def add_local_builds(writer: ArchiveWriter, data_dir: Path) -> set[tuple[str, str, str]]:
    """Archive builds, their virtualenvs and replica states; the (name, version, tag) of every build kept."""
    builds = data_dir / "builds"
    writer.add_tree(f"data/{_relative(data_dir, builds)}", builds)
    kept: set[tuple[str, str, str]] = set()
    venvs_root = data_dir.joinpath(*CACHE)
    venvs: set[str] = set()
    for name in writer.files:
        parts = name.split("/")
        # data/builds/{name}/{version}/{tag}/artifact.json
        if len(parts) == 6 and parts[1] == "builds" and parts[5] == ARTIFACT_FILE:
            kept.add((parts[2], parts[3], parts[4]))
            venv = _venv_of(builds / parts[2] / parts[3] / parts[4] / ARTIFACT_FILE, venvs_root)
            if venv:
                venvs.add(venv)
    for venv in sorted(venvs):
        writer.add_tree(f"data/{'/'.join(CACHE)}/{venv}", venvs_root / venv)
    compat = data_dir.joinpath(*COMPAT_CACHE)
    writer.add_tree(f"data/{'/'.join(COMPAT_CACHE)}", compat, skip=lambda p: p.suffix == ".lock")
    layout = LocalLayout(data_dir)
    writer.add_tree(f"data/{_relative(data_dir, layout.state_root)}", layout.state_root)
    return kept


def _venv_of(artifact_file: Path, venvs_root: Path) -> str | None:
    """The cache virtualenv an artifact's command runs in (its directory name), if any."""
    try:
        command = json.loads(artifact_file.read_text()).get("command") or []
    except (OSError, ValueError):
        return None
    if not command:
        return None
    executable = Path(command[0])
    try:
        return executable.relative_to(venvs_root).parts[0]
    except (ValueError, IndexError):
        return None


def missing_builds(wanted: set[tuple[str, str, str]], kept: set[tuple[str, str, str]]) -> list[str]:
    """The wanted builds (name, version, deployment tag) whose build was not archived."""
    return sorted(f"{n} {v} ({t})" for n, v, t in wanted if (n, v, build_tag(t)) not in kept)


def prepare_restored(staged_data: Path, old_data_dir: str, new_data_dir: Path) -> None:
    """Make staged builds and replica states fit the new data dir before they are moved into place."""
    old, new = old_data_dir.rstrip("/"), str(new_data_dir).rstrip("/")
    moved = old != new
    if moved:
        for pattern in (f"builds/*/*/*/{ARTIFACT_FILE}", "cache/**/*.pth"):
            for path in staged_data.glob(pattern):
                if path.is_file() and not path.is_symlink():
                    _replace_prefix(path, old, new)
    layout = LocalLayout(staged_data)
    for _name, _version, _index, path in layout.state_files():
        if moved:
            _replace_prefix(path, old, new)
        state = json.loads(path.read_text())
        # Not the old platform's process, directory or uid: the restored platform starts its own.
        state.update(pid=0, home="", uid=None, stopped_by_shutdown=True, error=None)
        path.write_text(json.dumps(state, indent=2))


def _replace_prefix(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    # Whole path prefixes only: "/data" must not rewrite "/data-jobs".
    changed = text.replace(old + "/", new + "/").replace(json.dumps(old), json.dumps(new))
    if changed != text:
        path.write_text(changed)
