"""The dashboard: Trackside run and administered from a browser.

Server-rendered pages (Jinja2) with htmx for partial updates and server-sent events for the live
parts (job status, deployment progress, logs, call charts). It is a client of the lifecycle REST
API like any other, acting with the logged-in user's token from the `X-Racetrack-Auth` cookie, so
every permission check is the API's. `trackside up` serves it at `/dashboard`; `trackside serve
dashboard` runs it alone against a lifecycle URL. Front-end libraries are vendored under
`static/vendor/` by `scripts/fetch-dashboard-assets`.
"""
