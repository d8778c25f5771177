"""Tests for `python -m autograder review OUT` as a process (autograder/review/server.py)."""

from __future__ import annotations

import shutil
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from review_support import serving

from autograder.cli import main


@pytest.fixture()
def out(review_demo: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(review_demo, tmp_path / "out"))


def status(url: str) -> int:
    """The final status of a GET by a client that keeps cookies, as a browser does."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    try:
        with opener.open(url, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_server_prints_a_tokened_loopback_url_and_stops_on_ctrl_c(out):
    """Does `review` print http://127.0.0.1:PORT/?token=<43 random chars>, refuse requests
    without the token, answer with it, and exit cleanly on Ctrl-C (SIGINT)?"""
    with serving(out) as (url, process):
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1" and parts.query.startswith("token=")
        assert len(parts.query.removeprefix("token=")) == 43
        assert status(f"http://127.0.0.1:{parts.port}/") == 403
        assert status(url) == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0


def test_two_servers_get_different_tokens_and_ports(out):
    """Is the token fresh per start, and a busy default port skipped?"""
    with serving(out) as (first, _), serving(out) as (second, _):
        assert urlsplit(first).query != urlsplit(second).query
        assert urlsplit(first).port != urlsplit(second).port


def test_a_taken_port_is_a_clear_error(out):
    """Does asking for a port in use end with a one-line error, exit code 2?"""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["review", str(out), "--port", str(port)])
    assert result.exit_code == 2 and f"port {port} on 127.0.0.1 is taken" in result.output
