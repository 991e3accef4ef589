"""Loopback ports for the servers tests start, chosen below the kernel's ephemeral range.

A port found free by binding port 0 comes from the ephemeral range, which every outgoing connection
on the machine draws its local port from: in the second or two before the test's server binds it,
a client socket (a database connection, a call to a job, another test's platform) can take it, and
the server fails with "address already in use" (seen in CI: `trackside up` of a crash test). A port
below the range is only ever taken by a server that asks for it by number, and each xdist worker
has a slice of its own, so two workers never pick the same. The slices stay clear of the fixed ports
of this machine's services (kubelet's 10248-10259) and of Kubernetes' NodePort range (30000-32767).
"""

from __future__ import annotations

import itertools
import os
import socket
from pathlib import Path

FIRST = 20000
SLICE = 1500
_LAST_OK = 29999


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _worker_slice() -> range | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) if worker.isdigit() else 0
    start = FIRST + index * SLICE
    if start + SLICE - 1 > min(_LAST_OK, _ephemeral_low() - 1):
        return None  # more workers than slices: fall back to the kernel's choice
    return range(start, start + SLICE)


_SLICE = _worker_slice()
_NEXT = itertools.count()


def free_port() -> int:
    """A loopback port nothing listens on now, for a server the test starts (or a call that must be
    refused)."""
    if _SLICE is not None:
        for _ in range(len(_SLICE)):
            port = _SLICE[next(_NEXT) % len(_SLICE)]
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue  # a server of this worker's, or a connection still in TIME_WAIT
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
