"""Trackside's benchmarks, each measured side by side with its anchor: `python -m bench [--quick] [--only NAME]`."""
