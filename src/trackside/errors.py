"""Errors every component raises, each mapped to one HTTP status.

The lifecycle API turns them into `{"error": message, "type": name}` bodies (Racetrack's shape);
the CLI prints `message` on one line and exits non-zero.
"""

from __future__ import annotations


class TracksideError(Exception):
    """Base error: `message` is shown to the user as it is."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def type_name(self) -> str:
        return type(self).__name__


class InvalidInput(TracksideError):
    """The request or the manifest is wrong; the message says what and where."""

    status_code = 400


class Unauthorized(TracksideError):
    status_code = 401


class Forbidden(TracksideError):
    status_code = 403


class NotFound(TracksideError):
    status_code = 404


class AlreadyExists(TracksideError):
    status_code = 409


class Unavailable(TracksideError):
    """The platform can't serve this now (maintenance mode, a component down)."""

    status_code = 503


class BuildFailed(TracksideError):
    """The job's source could not be turned into something runnable; build logs say why."""

    status_code = 400


class DeployFailed(TracksideError):
    """The job was built but did not start serving."""

    status_code = 500
