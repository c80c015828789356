"""The terminal: one line format naming the task or flow, a progress bar with documents/s
and the time left on a terminal (a pty here), plain progress lines elsewhere, counts in
the singular for one, and no Prefect telemetry notice."""

from __future__ import annotations

import fcntl
import io
import logging
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from flows.engine.progress import Progress, log_progress
from flows.terminal import RunFormatter, TerminalHandler, console_handler
from flows.words import plural
from tests.conftest import REPO, SEEDS

# What rich draws: colours (dropped), erase-line and cursor movements (line breaks here).
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
_MOVE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def _screen(raw: bytes) -> str:
    return _MOVE.sub("\n", _COLOUR.sub("", raw.decode("utf-8", errors="replace")))


def _openpty(columns: int = 160, rows: int = 50) -> tuple[int, int]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    return master, slave


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("prefect.task_runs", logging.INFO, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_plural() -> None:
    assert plural(1, "shard") == "1 shard"
    assert plural(0, "shard") == "0 shards"
    assert plural(2, "worker process", "worker processes") == "2 worker processes"


def test_a_prefect_record_names_its_task_or_flow() -> None:
    formatter = RunFormatter()
    task = _record("Finished in state Completed()", task_run_name="publish-1a2", flow_name="x")
    assert formatter.format(task).endswith(" INFO task publish-1a2: Finished in state Completed()")
    flow = _record("Finished in state Completed()", flow_name="build-release")
    assert formatter.format(flow).endswith(
        " INFO flow build-release: Finished in state Completed()"
    )
    ours = logging.LogRecord("flows.engine.run", logging.INFO, __file__, 1, "2 inputs", (), None)
    assert re.fullmatch(r"\d\d:\d\d:\d\d INFO flows.engine.run: 2 inputs", formatter.format(ours))


def test_progress_describes_itself_for_the_prefect_ui() -> None:
    assert Progress(1, 4, 250, 1000).percent == 25.0
    assert Progress(1, 1, 3, 3).describe() == "100%: 1 of 1 shard done, 3 of 3 documents"
    assert Progress(0, 2).describe() == "0%: 0 of 2 shards done"


def _drive(handler: logging.Handler) -> None:
    log = logging.getLogger("tests.terminal")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        log.info("2000 inputs in 2 shards of up to 1000")
        log_progress(log, Progress(0, 2, 0, 2000), "reading the inputs")
        time.sleep(0.3)
        log_progress(log, Progress(1, 2, 1000, 2000), "shard 0: 990 published, 10 rejected")
        log.warning("a line while the bar is drawn")
        time.sleep(0.3)
        log_progress(log, Progress(2, 2, 2000, 2000), "shard 1: 1000 published, 0 rejected")
        log.info("published release x")
    finally:
        log.removeHandler(handler)


def test_a_terminal_gets_a_bar_with_rate_and_time_left() -> None:
    master, slave = _openpty()
    try:
        with open(slave, "w", encoding="utf-8", closefd=False) as tty:
            handler = console_handler(tty)
            assert isinstance(handler, TerminalHandler)
            _drive(handler)
            handler.close()
            tty.flush()
        text = _read_available(master)
    finally:
        os.close(master)
        os.close(slave)
    screen = _screen(text)
    bars = [line for line in screen.splitlines() if "shards" in line and "docs" in line]
    assert any("1/2 shards" in line and "1000/2000 docs" in line for line in bars), screen
    final = [line for line in bars if "2/2 shards" in line]
    assert final and "2000/2000 docs" in final[-1] and "docs/s" in final[-1], screen
    assert "ETA" in final[-1] and "elapsed" in final[-1]
    # No plain progress line: the bar says it.
    assert "progress: 1/2 shards done" not in screen
    assert "WARNING tests.terminal: a line while the bar is drawn" in screen
    assert "INFO tests.terminal: published release x" in screen


def test_a_pipe_gets_plain_progress_lines() -> None:
    stream = io.StringIO()
    handler = console_handler(stream)
    assert not isinstance(handler, TerminalHandler)
    _drive(handler)
    lines = stream.getvalue().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "INFO tests.terminal: 2000 inputs in 2 shards of up to 1000",
        "INFO tests.terminal: progress: 0/2 shards done; reading the inputs",
        "INFO tests.terminal: progress: 1/2 shards done; shard 0: 990 published, 10 rejected",
        "WARNING tests.terminal: a line while the bar is drawn",
        "INFO tests.terminal: progress: 2/2 shards done; shard 1: 1000 published, 0 rejected",
        "INFO tests.terminal: published release x",
    ]


def _read_available(fd: int, wait: float = 0.5) -> bytes:
    chunks = []
    while select.select([fd], [], [], wait)[0]:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def run_in_pty(args: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal, as in a user's shell."""
    master, slave = _openpty()
    process = subprocess.Popen(
        args, cwd=REPO, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer closed its end
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return code, _screen(b"".join(chunks))


def _env(home: Path) -> dict[str, str]:
    # A first use of Prefect: its home holds no "notice shown" marker.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PREFECT_") and k not in ("DO_NOT_TRACK", "CI")
    }
    env.update(PREFECT_HOME=str(home), TERM="xterm-256color", COLUMNS="160")
    return env


def _corpus() -> str:
    return str(Path(sys.executable).with_name("corpus"))


def test_validate_on_a_terminal_draws_the_bar(tmp_path: Path) -> None:
    code, screen = run_in_pty(
        [_corpus(), "validate", "--source", str(SEEDS), "--shard-size", "1"],
        _env(tmp_path / "prefect-home"),
        timeout=120,
    )
    assert code == 0, screen
    assert re.search(r"2/2 shards .*2/2 docs .*docs/s .*ETA", screen), screen
    assert "2 inputs in 2 shards of up to 1" in screen
    assert "progress: " not in screen


@pytest.mark.slow
def test_corpus_run_on_a_terminal_is_calm(tmp_path: Path) -> None:
    code, screen = run_in_pty(
        [
            _corpus(),
            "run",
            "--source",
            str(SEEDS),
            "--out",
            str(tmp_path / "out"),
            "--shard-size",
            "2",
            "--workers",
            "1",
        ],
        _env(tmp_path / "prefect-home"),
        timeout=300,
    )
    assert code == 0, screen
    lines = [line for line in screen.splitlines() if line.strip()]
    assert "anonymous usage" not in screen and "telemetry" not in screen.lower()
    # Prefect keeps a device id there in any case; the notice was never shown.
    assert not (tmp_path / "prefect-home" / ".sdk_telemetry" / "notice_shown").exists()
    # One format: no Prefect-style "12:00:00.123 | INFO    | Task run ..." lines.
    assert not [line for line in lines if " | INFO" in line or " | WARNING" in line], screen
    finished = [line for line in lines if "Finished in state" in line]
    assert finished and all(re.search(r" (task|flow) [\w-]+: Finished", f) for f in finished)
    assert "2 inputs in 1 shard of up to 2" in screen
    assert "1 shards" not in screen
    assert re.search(r"1/1 shard .*2/2 docs .*docs/s", screen), screen
    assert screen.rstrip().splitlines()[-1].startswith("published 2 of 2 inputs")


def test_pool_workers_print_warnings_only_in_the_one_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from flows.console import WorkerConsoleHandler

    handler = WorkerConsoleHandler()
    for level, message in [
        (logging.INFO, "Finished in state Completed()"),
        (logging.WARNING, "part-00003 failed verification: processed again"),
        (logging.ERROR, "Task run failed with exception"),
    ]:
        record = _record(message, task_run_name="process-shard-3", flow_name="build-release")
        record.levelno, record.levelname = level, logging.getLevelName(level)
        handler.emit(record)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d WARNING task process-shard-3: part-00003 failed verification: "
        r"processed again",
        lines[0],
    )


def test_the_cli_imports_rich_only_to_draw_a_bar() -> None:
    # Its import is a fixed cost of every command (validate, schemas, a piped run).
    code = "import sys, flows.cli; sys.exit('rich' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, check=False).returncode == 0


def test_the_bar_starts_with_its_totals() -> None:
    # The bar draws its first frame as it starts: "0/None docs" until the first update
    # was what a user saw before the first shard.
    from flows.progress_bar import start_bar

    bar, task = start_bar(io.StringIO(), Progress(0, 5, 0, 1000))
    try:
        shown = bar.tasks[task]
        assert (shown.total, shown.completed, shown.fields["shards"]) == (1000, 0, "0/5 shards")
    finally:
        bar.stop()
