"""Backup and restore of a whole platform: `trackside admin backup FILE` and `trackside admin restore FILE`.

One archive holds what an operator must keep (docs/operations.md says what to do with it): the
database (SQLite's online backup API, or `pg_dump`), the plugins, the local target's builds (with the
virtualenvs they run in) or, for image targets, the image list with digests, the job secrets
encrypted as at rest, and the keys only when asked.

    manifest.py   the archive's manifest: what it holds, from where, with a checksum per file
    archive.py    writing (atomically, never over a file) and reading (checked, links never followed)
    database.py   dumping and loading SQLite and PostgreSQL
    plugins.py    the plugins directory
    builds.py     local builds, their virtualenvs and replica states (paths moved on restore)
    images.py     the images jobs on container targets run, with digests
    secrets.py    job secret files of the targets (encrypted as at rest)
    keys.py       the auth and secrets keys (only with --include-keys) and the recovery steps without them
    service.py    backup() and restore(), in the order that keeps them consistent
"""
