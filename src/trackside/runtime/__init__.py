"""The job runtime: serves a Racetrack-style job class over HTTP (stdlib only, relative imports).

The build copies this package verbatim into the job's artifact as `trackside_runtime` and runs it
with the job's own virtualenv, so nothing here may import `trackside` or a third-party package.
"""
