"""The pipeline JSON Schema: chainr's, with our optional fields, `additionalProperties: false` everywhere.

chainr checked `POST /api/runs` bodies against a JSON Schema before reading them (reference 1.1) and
answered 400 with the messages joined by ", ". We keep that: every chainr field keeps its type and
meaning, every field we add is optional, and an unknown field anywhere is an error naming its path.
chainr's `required: [image, run]` on a job becomes "either `call`, or `image` and `run`", checked in
`validation.py` with a message of the same form.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

CONDITIONS_ON = ["success", "failure", "completion", "always"]
EVENT_TYPES = ["START", "SUCCESS", "FAILURE", "SKIPPED", "CANCELED"]
HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

_ENV = {"type": "object", "additionalProperties": {"type": "string"}}

PIPELINE_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Pipeline",
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "jobs"],
    "properties": {
        "kind": {"type": "string", "const": "Pipeline"},
        "jobs": {"type": "object", "additionalProperties": {"$ref": "#/definitions/job"}},
        # Trackside's additions, all optional.
        "params": {"type": "object"},
        "parallelism": {"type": "integer", "minimum": 1},
        "timeoutSeconds": {"type": "number", "exclusiveMinimum": 0},
        "executor": {"type": "string"},
        "notifications": {"type": "array", "items": {"$ref": "#/definitions/notification"}},
        "description": {"type": "string"},
    },
    "definitions": {
        "job": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "image": {"type": "string"},
                "run": {"type": "string"},
                "dependsOn": {"type": "array", "items": {"$ref": "#/definitions/dependency"}},
                "call": {"$ref": "#/definitions/call"},
                "env": _ENV,
                "executor": {"type": "string"},
                "timeoutSeconds": {"type": "number", "exclusiveMinimum": 0},
                "retry": {"$ref": "#/definitions/retry"},
                "allowFailure": {"type": "boolean"},
                "description": {"type": "string"},
            },
        },
        "dependency": {
            "type": "object",
            "additionalProperties": False,
            "required": ["job"],
            "properties": {
                "job": {"type": "string"},
                "conditions": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "failure": {"type": "boolean"},
                        "on": {"type": "string", "enum": CONDITIONS_ON},
                    },
                },
            },
        },
        "call": {
            "type": "object",
            "additionalProperties": False,
            "required": ["job"],
            "properties": {
                "job": {"type": "string", "minLength": 1},
                "version": {"type": "string", "minLength": 1},
                "path": {"type": "string"},
                "method": {"type": "string", "enum": HTTP_METHODS},
                "payload": {},
                "headers": _ENV,
            },
        },
        "retry": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "limit": {"type": "integer", "minimum": 0, "maximum": 100},
                "backoff": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "seconds": {"type": "number", "minimum": 0},
                        "factor": {"type": "number", "minimum": 1},
                        "maxSeconds": {"type": "number", "minimum": 0},
                    },
                },
            },
        },
        "notification": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "on": {"type": "array", "items": {"type": "string", "enum": EVENT_TYPES}},
                "scope": {"type": "array", "items": {"type": "string", "enum": ["run", "job"]}},
                "log": {"type": "boolean"},
                "webhook": {"type": "string", "pattern": "^https?://"},
                "secret": {"type": "string"},
                "notifier": {"type": "string", "minLength": 1},
                "config": {"type": "object"},
            },
        },
    },
}

_VALIDATOR = Draft7Validator(PIPELINE_SCHEMA)


def _pointer(error: ValidationError) -> str:
    return "/" + "/".join(str(part) for part in error.absolute_path)


def _message(error: ValidationError) -> str:
    if error.validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else error.message
        return f'"{missing}" value is required'
    if error.validator == "additionalProperties":
        schema = error.schema if isinstance(error.schema, dict) else {}
        instance: Any = error.instance
        extra = sorted(set(instance) - set(schema.get("properties", {})))
        return "additional properties " + ", ".join(f'"{name}"' for name in extra) + " not allowed"
    if error.validator == "const":
        return f"must equal {error.validator_value!r}, got {error.instance!r}"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(str(v) for v in _listed(error.validator_value))}"
    if error.validator == "type":
        return f"type should be {error.validator_value}, got {type(error.instance).__name__}"
    return str(error.message)


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def schema_errors(body: Any) -> list[str]:
    """Every violation of the schema, as "/json/pointer: message", in document order."""
    errors = sorted(_VALIDATOR.iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_pointer(error)}: {_message(error)}" for error in errors]
