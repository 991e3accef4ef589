"""The lifecycle REST API (Racetrack-compatible, under `/lifecycle/api/v1` and `/api/v1`)."""
