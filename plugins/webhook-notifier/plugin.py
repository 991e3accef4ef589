"""Webhook notifier: POSTs a JSON event to a URL after every job deploy and delete.

Configure it with `PUT /plugin/webhook-notifier/1.0.0/config` (or the dashboard); see `config.yaml`
for the fields. The config is read at each event, so a change applies at once. `POST
/plugin/webhook-notifier/run` sends a test event (`{"event": "ping"}`) and returns the webhook's status.
The stdlib HTTP client keeps the bundle free of requirements.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("webhook-notifier")


class Plugin:
    config_path: Path | None = None  # set by the plugin engine

    def _config(self) -> dict[str, Any]:
        if self.config_path is None or not Path(self.config_path).is_file():
            return {}
        loaded = yaml.safe_load(Path(self.config_path).read_text()) or {}
        return loaded if isinstance(loaded, dict) else {}

    def _send(self, event: dict[str, Any]) -> int | None:
        config = self._config()
        url = str(config.get("webhook_url") or "")
        if not url:
            return None
        headers = {
            "Content-Type": "application/json",
            **{str(k): str(v) for k, v in (config.get("headers") or {}).items()},
        }
        request = urllib.request.Request(url, data=json.dumps(event).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=float(config.get("timeout") or 5)) as response:
            status: int = response.status
        log.info("webhook-notifier: %s sent to %s (HTTP %s)", event.get("event"), url, status)
        return status

    def _pub_url(self, job: Any) -> str | None:
        known = getattr(job, "pub_url", None)
        settings = getattr(self, "settings", None)  # set by Trackside's plugin engine
        if known or settings is None:
            return known
        return f"{settings.pub_url}/job/{job.name}/{job.version}"

    def post_job_deploy(self, manifest: Any, job: Any, image_name: str, deployer_username: str | None = None) -> None:
        self._send(
            {
                "event": "job_deployed",
                "job_name": job.name,
                "job_version": job.version,
                "pub_url": self._pub_url(job),
                "infrastructure_target": getattr(job, "infrastructure_target", None),
                "image_name": image_name,
                "deployed_by": deployer_username,
                "owner_email": getattr(manifest, "owner_email", None),
                "time": int(time.time()),
            }
        )

    def post_job_delete(self, job: Any, username_executor: str | None = None) -> None:
        self._send(
            {
                "event": "job_deleted",
                "job_name": job.name,
                "job_version": job.version,
                "deleted_by": username_executor,
                "time": int(time.time()),
            }
        )

    def run_action(self, **kwargs: Any) -> dict[str, Any]:
        status = self._send({"event": "ping", "params": kwargs, "time": int(time.time())})
        return {"sent": status is not None, "status": status}

    def markdown_docs(self) -> str:
        return "# webhook-notifier\n\nPOSTs `job_deployed` and `job_deleted` events as JSON to `webhook_url`.\n"
