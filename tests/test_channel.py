"""The judge's pipe to the evaluator: deadlines on every frame, and who pays for a broken pipe.

Unit tests drive :class:`autograder.judge.channel.Channel` against a raw peer. The batch tests
grade hostile notebooks with ``python -m autograder grade`` in a subprocess (killed if it hangs):
their cells find the evaluator's end of the pipe, as student code can, and break the protocol.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

import nbformat
import pytest

from autograder import interrupts
from autograder.intake import Submission
from autograder.judge.channel import Channel, ChannelClosed, FrameTimeout, FrameTooLarge
from autograder.judge.engine import JudgeConfig, grade_submission
from autograder.judge.sandbox import Limits
from autograder.samples import answer_cell_index
from helpers import CORRECT, MP, fill, write_notebooks

REPO = Path(__file__).resolve().parents[1]
TOTAL_POINTS = MP.total_points
BATCH_LIMIT = 240.0
"""Seconds the hostile batch may take before the test calls it a hang (about 40 s expected)."""

# --- the channel against a raw peer ---------------------------------------------------------------


@pytest.fixture()
def pair():
    """A judge-side channel and the raw socket of the other end."""
    mine, theirs = multiprocessing.Pipe(duplex=True)
    peer = socket.socket(fileno=os.dup(theirs.fileno()))
    theirs.close()
    channel = Channel(mine)
    yield channel, peer
    channel.close()
    peer.close()


def test_frames_round_trip_in_multiprocessing_framing(pair):
    """Does a frame sent by the channel read back with Connection.recv_bytes, and the reverse?"""
    channel, peer = pair
    other = Connection(os.dup(peer.fileno()))
    channel.send(b"hello", timeout=1)
    assert other.recv_bytes() == b"hello"
    other.send_bytes(b"x" * 100_000)
    assert channel.receive(timeout=2, max_bytes=1_000_000) == b"x" * 100_000
    other.close()


def test_truncated_frame_times_out_instead_of_hanging(pair):
    """Does a frame that announces 1000 bytes and sends 10 end in FrameTimeout at the deadline?"""
    channel, peer = pair
    peer.sendall(struct.pack("!i", 1000) + b"x" * 10)
    start = time.monotonic()
    with pytest.raises(FrameTimeout) as caught:
        channel.receive(timeout=0.5, max_bytes=10_000)
    assert caught.value.started
    assert 0.4 < time.monotonic() - start < 2.0


def test_silence_is_a_timeout_that_never_started(pair):
    """Is a peer that sends nothing a FrameTimeout with started=False (an ordinary hang)?"""
    channel, _ = pair
    with pytest.raises(FrameTimeout) as caught:
        channel.receive(timeout=0.3, max_bytes=100)
    assert not caught.value.started
    assert not channel.readable(0.1)


def test_send_to_a_peer_that_stops_reading_times_out(pair):
    """Does sending 8 MB to a peer that never reads end in FrameTimeout instead of blocking?"""
    channel, _ = pair
    start = time.monotonic()
    with pytest.raises(FrameTimeout) as caught:
        channel.send(b"y" * 8_000_000, timeout=0.5)
    assert caught.value.started
    assert time.monotonic() - start < 2.0


@pytest.mark.parametrize("length", [-7, 2_000])
def test_bad_lengths_are_refused_before_reading(pair, length):
    """Is a negative or oversized announced length refused without waiting for the bytes?"""
    channel, peer = pair
    peer.sendall(struct.pack("!i", length))
    with pytest.raises(FrameTooLarge):
        channel.receive(timeout=5, max_bytes=1_000)


def test_peer_closing_mid_frame_is_closed(pair):
    """Does an end of file inside a frame raise ChannelClosed (not a hang, not a short frame)?"""
    channel, peer = pair
    peer.sendall(struct.pack("!i", 100) + b"z" * 5)
    peer.shutdown(2)
    with pytest.raises(ChannelClosed):
        channel.receive(timeout=5, max_bytes=1_000)


def test_a_closed_channel_reports_closed_not_a_bad_file_descriptor(pair):
    """After the judge closed its end (the evaluator was killed), do a send and a receive raise
    ChannelClosed, which the engine turns into a dead evaluator, rather than OSError(EBADF), which
    made the whole submission an `error` row after a segfault in a call sent ahead?"""
    channel, _ = pair
    channel.close()
    assert channel.readable(0.1)  # the receive reports it
    with pytest.raises(ChannelClosed):
        channel.send(b"hello", timeout=1)
    with pytest.raises(ChannelClosed):
        channel.receive(timeout=1, max_bytes=100)


def test_frames_arriving_together_are_handed_out_one_by_one(pair):
    """When several frames (and the start of a large one) arrive in one read, does each receive
    give exactly its own frame, in order, and the large one whole?"""
    channel, peer = pair
    large = bytes(range(256)) * 1_000  # larger than one chunk, and than the socket's buffer
    frames = [b"a", b"", b"bc" * 500, large]
    data = b"".join(struct.pack("!i", len(f)) + f for f in frames)
    sender = threading.Thread(target=peer.sendall, args=(data,))
    sender.start()
    try:
        assert channel.readable(1.0)
        for frame in frames:
            assert channel.receive(timeout=5, max_bytes=1_000_000) == frame
        assert not channel.readable(0.1)
    finally:
        sender.join(timeout=10)


def test_frames_sent_together_read_back_with_multiprocessing_framing(pair):
    """Do frames sent in one go (small ones in one system call, a large one after them) read
    back one by one with Connection.recv_bytes?"""
    channel, peer = pair
    other = Connection(os.dup(peer.fileno()))
    frames = [b"one", b"two" * 100, b"", b"x" * 200_000, b"last"]
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.extend(other.recv_bytes() for _ in frames))
    reader.start()
    channel.send_all(frames, timeout=5)
    reader.join(timeout=10)
    other.close()
    assert received == frames


def test_end_of_file_after_buffered_frames_is_closed_after_them(pair):
    """Are frames already read handed out before an end of file that followed them is
    reported as ChannelClosed?"""
    channel, peer = pair
    peer.sendall(struct.pack("!i", 2) + b"ok" + struct.pack("!i", 5) + b"ab")
    peer.shutdown(socket.SHUT_WR)
    assert channel.receive(timeout=2, max_bytes=100) == b"ok"
    with pytest.raises(ChannelClosed, match="inside a message"):
        channel.receive(timeout=2, max_bytes=100)
    assert channel.readable(0.1)  # the receive reports it


def test_a_stop_cancels_a_wait_within_the_poll_interval(pair):
    """When the batch is stopping, does a receive waiting for a silent peer raise Cancelled
    within a few poll intervals?"""
    channel, _ = pair
    timer = threading.Timer(0.3, interrupts.request_stop, args=(signal.SIGTERM,))
    try:
        with interrupts.deferred():
            timer.start()
            start = time.monotonic()
            with pytest.raises(interrupts.Cancelled):
                channel.receive(timeout=30, max_bytes=100)
            waited = time.monotonic() - start
    finally:
        timer.join()
        interrupts.reset()  # the stop is sticky: later tests in this process must not see it
    assert waited < 0.3 + 5 * interrupts.POLL_SECONDS


# --- hostile notebooks through `grade` ------------------------------------------------------------

FIND_PIPE = """
import os, json, struct, sys, time
_frame = sys._getframe(0)
while _frame is not None and "conn" not in _frame.f_locals:
    _frame = _frame.f_back
conn, seq = _frame.f_locals["conn"], _frame.f_locals["request"]["seq"]
del _frame

def forged(header):
    head = json.dumps({**header, "_blobs": []}).encode()
    conn.send_bytes(struct.pack(">I", len(head)) + head)
"""
"""Student code that finds the evaluator's end of the pipe (as test_redteam's forgeries do)."""

TRUNCATED_FRAME = FIND_PIPE + 'os.write(conn.fileno(), struct.pack("!i", 1000) + b"x" * 10)\n'
"""A frame that announces 1000 bytes and sends 10; the evaluator's own reply follows."""
STOP_READING = FIND_PIPE + 'forged({"seq": seq, "status": "ok"})\ntime.sleep(60)\n'
"""Answers its own request, then keeps the evaluator from reading the next one."""
BIG_CELL = f"blob = '{'b' * 2_000_000}'\n"
"""A 2 MB cell: larger than the socket buffers between judge and evaluator."""
FORGED_OWN_REPLY = FIND_PIPE + 'forged({"seq": seq, "status": "ok"})\n'
"""A reply with the cell's own sequence number; the evaluator's real reply comes after it."""
GIVENS_CLEARED = "import sys\nsys.modules['autograder.judge.evaluator']._GIVENS.clear()\n"
"""Empties the evaluator's table of what the judge may hand to student code (f' for q1c)."""
GIVEN_TAKER = "q1c"
"""Exercise 2's question whose function gets a given (``jacobian_elementwise(f_prime, x)``)."""
KILL_EVALUATOR = "import os\nos._exit(0)\n"
RESTARTS = 10
"""Cells that kill the evaluator: more than the restart budget (8)."""


def _with_cells(template, *cells: str, after_answers: bool = False) -> nbformat.NotebookNode:
    """Correct answers with ``cells`` right after ``import numpy as np`` (or at the end)."""
    nb = fill(template, CORRECT)
    new = [nbformat.v4.new_code_cell(c) for c in cells]
    if after_answers:
        nb.cells.extend(new)
    else:
        at = answer_cell_index(nb, MP.question_ids[0], pack=MP) - 1
        nb.cells[at:at] = new
    return nb


@pytest.fixture(scope="module")
def hostile(built, template, tmp_path_factory) -> dict:
    """The hostile notebooks and a control, graded by `grade` in a subprocess, then again."""
    root = tmp_path_factory.mktemp("pipe")
    subs, out = root / "submissions", root / "out"
    write_notebooks(
        subs,
        {
            "control": fill(template, CORRECT),
            "truncated_frame": _with_cells(template, TRUNCATED_FRAME),
            "stops_reading": _with_cells(template, STOP_READING, BIG_CELL),
            "forged_own_reply": _with_cells(template, FORGED_OWN_REPLY),
            "givens_cleared": _with_cells(template, GIVENS_CLEARED),
            "restart_budget": _with_cells(
                template, *[KILL_EVALUATOR] * RESTARTS, after_answers=True
            ),
        },
    )
    command = [
        sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out),
        "--build-dir", str(built.out), "--jobs", "2", "--timeout", "120",
    ]  # fmt: skip
    env = {**os.environ, "MATH_PRIMER_CALL_TIMEOUT": "2"}
    runs = []
    for _ in range(2):
        start = time.monotonic()
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, start_new_session=True, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            output, _ = proc.communicate(timeout=BATCH_LIMIT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"grade hung: no result after {BATCH_LIMIT:g} s")
        runs.append({"seconds": time.monotonic() - start, "code": proc.returncode, "out": output})
        print(f"hostile batch: {runs[-1]['seconds']:.1f} s")
    results = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    return {"runs": runs, "results": results, "cache": list((out / ".cache").glob("*.json"))}


def _notes(result: dict) -> str:
    return " | ".join(result.get("notes", []))


def test_batch_finishes_and_every_submission_has_a_row(hostile):
    """Does the batch of hostile notebooks finish (exit 0) with one row per submission?"""
    assert hostile["runs"][0]["code"] == 0, hostile["runs"][0]["out"][-3000:]
    assert sorted(hostile["results"]) == [
        "control",
        "forged_own_reply",
        "givens_cleared",
        "restart_budget",
        "stops_reading",
        "truncated_frame",
    ]


def test_truncated_frame_costs_only_its_cell(hostile):
    """Does a cell that writes a truncated frame on the pipe cost only itself (12/12, a note),
    instead of hanging the batch?"""
    result = hostile["results"]["truncated_frame"]
    assert (result["status"], result["total"]) == ("graded", TOTAL_POINTS), _notes(result)
    assert "stopped the evaluator" in _notes(result)


def test_evaluator_that_stops_reading_costs_only_the_cell_sent_to_it(hostile):
    """Does a 2 MB cell sent to an evaluator that stopped reading time out (a note, the cell
    skipped) instead of hanging the judge in its send?"""
    result = hostile["results"]["stops_reading"]
    assert (result["status"], result["total"]) == ("graded", TOTAL_POINTS), _notes(result)
    assert "stopped the evaluator" in _notes(result)


def test_forged_reply_with_its_own_number_is_the_cells_answer(hostile):
    """Does a reply forged with the cell's own sequence number count as that cell's answer
    (the real one, arriving late, is dropped), with no evaluator restart and no error row?"""
    result = hostile["results"]["forged_own_reply"]
    assert (result["status"], result["total"]) == ("graded", TOTAL_POINTS), _notes(result)
    assert "stopped the evaluator" not in _notes(result)


def test_spent_restart_budget_is_the_students_outcome(hostile):
    """Does a notebook that kills its evaluator more often than the restart budget get a graded
    row (its checks failed with `exception`, a note), instead of an `error` row?"""
    result = hostile["results"]["restart_budget"]
    assert result["status"] == "graded", _notes(result)
    assert result["total"] == 0.0
    assert "gave up after" in _notes(result)
    assert all("exception" in q["tags"] for q in result["questions"].values())


def test_emptied_givens_cost_the_questions_that_need_them(hostile):
    """Does a cell that empties the evaluator's givens cost only the question whose function gets
    one (its checks fail with `exception`), instead of making its row an `error` row? (The
    evaluator reported its givens when it started, before any student code ran.)"""
    result = hostile["results"]["givens_cleared"]
    lost = MP.by_id[GIVEN_TAKER].points
    assert (result["status"], result["total"]) == ("graded", TOTAL_POINTS - lost), _notes(result)
    assert "exception" in result["questions"][GIVEN_TAKER]["tags"]


def test_every_row_is_cached_and_the_rerun_reuses_them(hostile):
    """Are the hostile rows cached (status graded), so the rerun grades nothing and is quick?"""
    assert len(hostile["cache"]) == len(hostile["results"]) == 6
    rerun = hostile["runs"][1]
    assert rerun["code"] == 0
    assert "reused:    6 cached" in rerun["out"], rerun["out"][-2000:]


def test_evaluator_that_cannot_start_is_an_error_row(template):
    """Is an evaluator that cannot even start (its limits cannot be set: a fault on the grading
    side, before any student code ran) an `error` row, as before?"""
    submission = Submission("broken_judge", Path("x.ipynb"), fill(template, CORRECT), None)
    config = JudgeConfig(limits=Limits(open_files=-2))
    result = grade_submission(submission, pack=MP, config=config)
    assert result["status"] == "error"
    assert all("could not grade" in q["feedback"] for q in result["questions"].values())
