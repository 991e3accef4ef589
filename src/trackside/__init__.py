"""Trackside."""
