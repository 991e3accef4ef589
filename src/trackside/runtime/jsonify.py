"""Turn whatever `perform` returns into JSON bytes (numpy values, sets, dataclasses, dates...)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import uuid
from typing import Any

_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=None).encode


def _default(obj: Any) -> Any:
    """json's fallback hook: called only for values json can't encode itself."""
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):  # numpy arrays and scalars
        return tolist()
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, datetime.timedelta):
        return obj.total_seconds()
    if isinstance(obj, decimal.Decimal):
        return float(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, (bytes, bytearray)):
        return obj.decode("utf-8", "replace")
    model_dump = getattr(obj, "model_dump", None) or getattr(obj, "dict", None)
    if callable(model_dump):  # pydantic models
        try:
            return model_dump()
        except Exception:
            pass
    if hasattr(obj, "__iter__") and not isinstance(obj, (str, dict)):
        try:
            return list(obj)
        except Exception:
            pass
    return str(obj)


_INF = float("inf")
_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_default)


def _plain(obj: Any) -> Any:
    """Recursive conversion for what the encoder refuses (non-string keys, NaN)."""
    if isinstance(obj, dict):
        return {k if isinstance(k, str) else str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, float) and (obj != obj or obj in (_INF, -_INF)):
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return _plain(_default(obj))


def to_json(obj: Any) -> bytes:
    try:
        return _encoder.encode(obj).encode()
    except (TypeError, ValueError):
        return _encoder.encode(_plain(obj)).encode()


def dumps(obj: Any) -> bytes:
    """Encode plain runtime data (no user objects)."""
    return _dumps(obj).encode()
