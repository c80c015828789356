"""The release writer under a hostile output folder, met through ``corpus run`` as a user
meets it: undeletable old releases, folders it did not write, a lock file that is a link or
a FIFO, a ``current`` replaced by the user, a full disk.

Real ``chattr +i`` and a real tmpfs mount where the test runs as root; skipped, with the
reason, where it cannot. Each CLI run starts its own temporary Prefect server (~10-20 s), so
one run serves several assertions."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from flows.errors import OutputError
from flows.models import Manifest, RunParameters
from flows.output.release import (
    CURRENT,
    RELEASES,
    ensure_output,
    ensure_tables,
    finalize,
    output_lock,
    staging_folder,
)
from tests.conftest import REPO, tmpfs
from tests.test_crash import current_release, documents_of, verify_release
from tests.test_publish import fake_manifest

pytestmark = pytest.mark.slow

T = TypeVar("T")

IS_ROOT = os.geteuid() == 0
needs_chattr = pytest.mark.skipif(
    not IS_ROOT or shutil.which("chattr") is None,
    reason="chattr +i needs root and e2fsprogs' chattr",
)
needs_mount = pytest.mark.skipif(
    not IS_ROOT or shutil.which("mount") is None, reason="mounting a tmpfs needs root and mount"
)


def corpus(source: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``corpus run`` as a user types it: no PREFECT_API_URL, so it starts its own server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    command = [sys.executable, "-m", "flows.cli", "run", "--source", str(source)]
    command += ["--out", str(out), "--task-runner", "thread", *extra]
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def ran(result: subprocess.CompletedProcess[str], code: int = 0) -> str:
    """The run's stderr, once its exit code is the one expected."""
    assert result.returncode == code, result.stderr[-4000:]
    return result.stderr


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 2 and exactly one ``corpus:`` line, the last one on stderr."""
    stderr = ran(result, 2)
    lines = [line for line in stderr.splitlines() if line.startswith("corpus:")]
    assert len(lines) == 1, stderr[-4000:]
    assert stderr.endswith(lines[0] + "\n"), stderr[-4000:]
    return lines[0]


@contextlib.contextmanager
def immutable(*paths: Path, under: Path) -> Iterator[None]:
    """``chattr +i`` on ``paths``; on the way out ``chattr -R -i`` on ``under``, wherever the
    run moved them to (tmp_path must stay removable)."""
    subprocess.run(["chattr", "+i", *map(str, paths)], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-R", "-i", str(under)], check=False, capture_output=True)


def copy_release(release: Path, name: str) -> Path:
    """A release as this tool writes it, under an older id (its manifest says so too)."""
    copy = release.parent / name
    shutil.copytree(release, copy)
    manifest = Manifest.model_validate_json((copy / "manifest.json").read_text())
    manifest.release_id = name
    (copy / "manifest.json").write_text(manifest.model_dump_json())
    return copy


def hidden(out: Path) -> list[str]:
    return sorted(p.name for p in (out / RELEASES).iterdir() if p.name.startswith("."))


# --- defects 1 and 2, checks 5a and 5c: pruning is housekeeping, and only of our releases ---


@needs_chattr
def test_pruning_that_fails_or_meets_foreign_folders_never_touches_current(
    seed_source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    ran(corpus(seed_source, out))
    first = current_release(out)
    fingerprint = first.name.split("-")[1]
    # Older releases of this tool: one whose folder cannot be renamed (immutable), one whose
    # contents cannot all be deleted (an immutable file inside).
    stuck = first  # the folder itself
    partial = copy_release(first, f"20200101T000000Z-{fingerprint}")
    partial_file = partial / "documents" / "part-00000.parquet"
    # Folders this tool did not write, some looking much like releases.
    releases = out / RELEASES
    foreign = {
        "v1": "a user's own release",
        "my-source": "documents placed here",
        "19990101T000000Z-deadbeef": "release-like name, no manifest",
        "19990102T000000Z-deadbeef": "manifest of another id",
        ".deleting-user-notes": "dot name that is not ours",
    }
    for name, text in foreign.items():
        (releases / name).mkdir()
        (releases / name / "notes.txt").write_text(text)
    shutil.copy(first / "manifest.json", releases / "19990102T000000Z-deadbeef")

    with immutable(stuck, partial_file, under=releases):
        stderr = ran(corpus(seed_source, out, "--keep-releases", "1", "--force-release"))
        second = current_release(out)
        # Published once, with its documents: not an empty retry of the publish task.
        assert second not in (first, partial)
        assert verify_release(second).counts["published"] == 2
        assert len(documents_of(second)) == 2
        # The release that could not be renamed stays, whole; it is named in a warning.
        assert stuck.is_dir()
        verify_release(stuck)
        assert f"could not prune release {stuck.name} (left in place)" in stderr
        # The half-deleted one is hidden under .deleting-, never visible as a release.
        assert not partial.exists()
        assert (releases / f".deleting-{partial.name}" / "documents").is_dir()
        assert f"could not finish deleting .deleting-{partial.name}" in stderr
    for name, text in foreign.items():
        assert (releases / name / "notes.txt").read_text() == text, name
    assert not list(releases.glob(".staging-*"))

    # 5c: a dangling ``current`` is repaired by the next release; the next run also finishes
    # deleting what the last one could not.
    (out / CURRENT).unlink()
    os.symlink(f"{RELEASES}/20000101T000000Z-{fingerprint}", out / CURRENT)
    stderr = ran(corpus(seed_source, out, "--keep-releases", "1"))
    third = current_release(out)
    assert third not in (first, second)
    verify_release(third)
    assert len(documents_of(third)) == 2
    assert "which does not exist; replacing it" in stderr
    assert not stuck.exists() and not second.exists()
    assert hidden(out) == [".deleting-user-notes"]
    for name, text in foreign.items():
        assert (releases / name / "notes.txt").read_text() == text, name


def test_a_retried_publish_publishes_nothing_new(seed_source: Path, tmp_path: Path) -> None:
    """Defect 1 at its root: the publish step run again after finalize succeeded (Prefect's
    retry) returns the release already published, never an empty one."""
    from flows.engine.plan import prepare
    from flows.engine.run import InlineRunner, execute

    published: list[Any] = []

    class RetryingRunner(InlineRunner):
        def step(self, name: str, fn: Callable[..., T], *args: Any) -> T:
            result = fn(*args)
            if name == "publish":
                published.append(result)
                published.append(fn(*args))  # the retry
            return result

    out = tmp_path / "out"
    execute(prepare(RunParameters(source=str(seed_source), out=str(out))), RetryingRunner())
    (first, manifest), (again, manifest_again) = published
    assert again == first == current_release(out)
    assert [p.name for p in (out / RELEASES).iterdir() if not p.name.startswith(".")] == [
        first.name
    ]
    assert manifest_again == manifest
    assert len(documents_of(first)) == 2


# --- defect 3: the lock file, and 5c: ``current`` replaced by a regular file ---


def test_lock_and_current_that_are_not_what_they_should_be_fail_in_one_line(
    seed_source: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")

    link_out = tmp_path / "link"
    (link_out / RELEASES).mkdir(parents=True)
    os.symlink(victim, link_out / ".lock")
    line = one_line_error(corpus(seed_source, link_out))
    assert line == f"corpus: {link_out}/.lock is a symbolic link, not a regular file; remove it"

    fifo_out = tmp_path / "fifo"
    (fifo_out / RELEASES).mkdir(parents=True)
    os.mkfifo(fifo_out / ".lock")
    line = one_line_error(corpus(seed_source, fifo_out))
    assert line == f"corpus: {fifo_out}/.lock is a FIFO (named pipe), not a regular file; remove it"

    hard_out = tmp_path / "hard"
    (hard_out / RELEASES).mkdir(parents=True)
    os.link(victim, hard_out / ".lock")
    line = one_line_error(corpus(seed_source, hard_out))
    assert "has 2 hard links" in line

    file_out = tmp_path / "file"
    (file_out / RELEASES).mkdir(parents=True)
    (file_out / CURRENT).write_text("mine")
    line = one_line_error(corpus(seed_source, file_out))
    assert line.startswith(f"corpus: {file_out}/current is a regular file, not a symbolic link")
    assert (file_out / CURRENT).read_text() == "mine"

    assert victim.read_text() == "precious\n"
    for out in (link_out, fifo_out, hard_out, file_out):
        assert list((out / RELEASES).iterdir()) == []


def test_the_lock_itself_never_follows_blocks_on_or_truncates_what_it_did_not_make(
    tmp_path: Path,
) -> None:
    """Past the preflight (a file swapped in after ensure_output): output_lock checks what it
    opened, before it truncates anything."""
    out = ensure_output(str(tmp_path / "out"))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    lock = out / ".lock"
    os.symlink(victim, lock)
    with (
        pytest.raises(OutputError, match="is a symbolic link, not a regular file"),
        output_lock(out),
    ):
        pass
    lock.unlink()
    os.mkfifo(lock)
    with pytest.raises(OutputError, match="is a FIFO"), output_lock(out):
        pass
    lock.unlink()
    os.link(victim, lock)
    with pytest.raises(OutputError, match="hard links"), output_lock(out):
        pass
    assert victim.read_text() == "precious\n"


# --- check 5b and defect 4: a full disk ---


def fill(folder: Path) -> None:
    """Write until the file system is full."""
    with (folder / "filler").open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC
            handle.truncate(handle.tell() - handle.tell() % 4096)


@needs_mount
def test_full_disk_fails_in_one_line_and_leaves_current_and_no_staging(
    seed_source: Path, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "disk", "2m") as disk:
        out = disk / "out"
        ran(corpus(seed_source, out))
        first = current_release(out)
        fill(disk)
        # Another language seed: every shard is processed and written again.
        line = one_line_error(corpus(seed_source, out, "--language-seed", "1"))
        assert line.startswith("corpus: no space left on device writing "), line
        # The one line ends with where the details are: the log under OUT (when it fits).
        assert "; nothing was published (details: " in line, line
        assert current_release(out) == first
        verify_release(first)
        assert hidden(out) == []  # no staging, no bookkeeping left behind
        assert [p.name for p in (out / RELEASES).iterdir()] == [first.name]


@needs_mount
def test_full_disk_in_finalize_keeps_current_and_removes_the_staging(tmp_path: Path) -> None:
    """The same at the last step: the manifest cannot be written."""
    with tmpfs(tmp_path / "disk", "1m") as disk:
        out = ensure_output(str(disk / "out"))
        name = "20240101T000000Z-0000000a"
        with output_lock(out), staging_folder(out) as staging:
            ensure_tables(staging)
            finalize(staging, fake_manifest(name), "card", out)
        first = current_release(out)
        fill(disk)
        with (
            pytest.raises(OutputError, match=r"^no space left on device writing .*manifest\.json"),
            output_lock(out),
            staging_folder(out) as staging,
        ):
            finalize(staging, fake_manifest("20240102T000000Z-0000000b"), "card", out)
        assert current_release(out) == first
        assert hidden(out) == []
        assert [p.name for p in (out / RELEASES).iterdir()] == [name]
