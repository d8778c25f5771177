"""``python -m autograder review OUT``: serve the review app on this machine."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from pathlib import Path

from .security import new_token
from .store import ReviewError

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8642


def serve(
    out: Path,
    *,
    host: str = DEFAULT_HOST,
    port: int | None = None,
    user: str | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the review app over ``out`` until interrupted (Ctrl-C).

    Args:
        out: The graded folder.
        host: Address to bind (default: loopback only).
        port: Port (default: 8642, or the next free one); 0 picks any free port.
        user: Name recorded in the audit trail (default: the OS user).
        announce: Receives the URL to open (with its token).

    Raises:
        ReviewError: Not a graded folder, or the port is taken.
    """
    import uvicorn

    from .app import create_app

    token = new_token()
    if host in ("127.0.0.1", "localhost"):
        hosts: tuple[str, ...] = ()
    elif host in ("0.0.0.0", "::"):  # every interface: clients may use any of its names
        hosts = ("*",)
    else:
        hosts = (host,)
    app = create_app(out, token=token, user=user, hosts=hosts)
    chosen = _free_port(host, port)
    if not _loopback(host):
        log.warning("serving on %s: anyone who can reach it and has the URL can grade", host)
    shown = f"[{host}]" if ":" in host else host
    announce(f"review app for {out}: http://{shown}:{chosen}/?token={token}")
    announce("(Ctrl-C stops it; every change is already saved)")
    config = uvicorn.Config(
        app, host=host, port=chosen, log_level="warning", access_log=False, server_header=False
    )
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:  # uvicorn shut down gracefully, then re-raised Ctrl-C
        pass
    announce("review app stopped")


def _free_port(host: str, port: int | None) -> int:
    candidates = [port] if port is not None else range(DEFAULT_PORT, DEFAULT_PORT + 20)
    for candidate in candidates:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, candidate))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise ReviewError(
        f"port {port} on {host} is taken; choose another with --port"
        if port is not None
        else f"ports {DEFAULT_PORT}-{DEFAULT_PORT + 19} on {host} are taken; choose one with --port"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
