"""Logging helpers of Racetrack's wrapper that job code imports."""
