"""`get_logger(name)`: a child of the `racetrack` logger, which the runtime prints at LOG_LEVEL."""

from __future__ import annotations

import logging


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger("racetrack").getChild(name)
