"""Run folders, atomic publication of `latest/`, the history page and retention.

A run is written into a hidden staging folder `runs/.<run-id>-xxxx`, fsynced, renamed into
`runs/<run-id>/` once complete, and only then is `latest` switched (a symlink replaced
atomically). A failure at any point leaves the previous `latest` and history untouched.

Two runs may share an output folder (a manual Job during the nightly one). `DIR/.lock`
(`flock`) is held only for short steps: choosing the run's name, and publishing (rename,
`latest`, history page, pruning). `latest` goes to the newest run by run id, not to whichever
run finished last.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from analyzer.errors import UserError
from analyzer.model.report import RunResult
from analyzer.write.html import render_history
from analyzer.write.registry import writers
from analyzer.write.run_index import RunFolder, published_summaries, run_folders, run_order, run_time

log = logging.getLogger("mtls_readiness")

LOCK_NAME = ".lock"
LOCK_TIMEOUT = 300.0  # seconds a run waits for another one's publish step
KEEP_RUNS = 60  # two months of nights, as the burndown draws; a big mesh needs a bigger volume (README: Retention)
KEEP_DAYS = 0  # 0: no age limit
STALE_AFTER = timedelta(hours=1)  # a staging folder this old belongs to a killed run
# What this module leaves behind when killed: staging folders, and temporary files in DIR.
_STAGING = re.compile(r"^\.\d{8}T\d{6}Z(?:-\d+)?-[A-Za-z0-9_]{8}$")
_TEMPORARY = re.compile(r"^(?:\.tmp-[A-Za-z0-9_]{8}|\.latest\.tmp)$")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_text(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=".tmp-", delete=False) as tmp:
        tmp.write(text)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.chmod(tmp.name, 0o644)  # served by a web server running as another user (the nginx overlay)
    os.replace(tmp.name, path)
    _fsync(path.parent)


def previous_summaries(output_dir: Path) -> list[dict[str, Any]]:
    """Sound summaries of published runs, newest first. Damaged runs are skipped with one warning each."""
    return published_summaries(output_dir / "runs")


def check_writable(output_dir: Path) -> None:
    """Fail before the long collection when the run could not be published anyway."""
    try:
        (output_dir / "runs").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output_dir / "runs"):
            pass
    except OSError as exc:
        raise UserError(
            f"cannot write to --output-dir {output_dir}: {exc.strerror}; make it writable or choose another"
        ) from None


@contextlib.contextmanager
def output_lock(output_dir: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold `DIR/.lock` exclusively; wait at most `timeout` seconds for another run to release it."""
    path = output_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY)  # made by a run under another user: flock needs no write access
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise UserError(
                        f"another run has held {path} for more than {timeout:g}s; this run was not published "
                        "(the previous report stays); run it again later or raise --lock-timeout"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # releases the lock


def publish(
    run: RunResult,
    output_dir: Path,
    *,
    keep_runs: int = KEEP_RUNS,
    keep_days: int = KEEP_DAYS,
    lock_timeout: float = LOCK_TIMEOUT,
) -> Path:
    """Write every file of the run (every registered writer), then publish it and prune old runs.
    Returns the run folder, whose name is the run id written (`<run-id>-2` when two runs share a second)."""
    runs_dir = output_dir / "runs"
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        with output_lock(output_dir, lock_timeout):
            _remove_stale(output_dir)
            final = _free_name(runs_dir, run.run_id)
            # The staging folder's name reserves `final` for this run until it is renamed.
            staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=runs_dir))
    except OSError as exc:
        raise UserError(
            f"cannot write to --output-dir {output_dir}: {exc.strerror}; make it writable or choose another"
        ) from None
    try:
        # The history links runs by the summary's run_id: it must name the folder actually used.
        if run.run_id != final.name:
            run = replace(run, run_id=final.name)
        for write in writers().values():
            write(run, staging)
        staging.chmod(0o755)
        for path in staging.iterdir():
            _fsync(path)
        _fsync(staging)
        with output_lock(output_dir, lock_timeout):
            if final.exists():
                raise UserError(f"{final} appeared while this run was being written; run it again")
            os.rename(staging, final)
            _fsync(runs_dir)
            _publish_step(output_dir, keep_runs, keep_days)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(
            f"cannot write the report under {output_dir}: {exc.strerror}; check free space and permissions"
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _publish_step(output_dir: Path, keep_runs: int, keep_days: int) -> None:
    """Under the lock: `latest` to the newest sound run, prune, then the history page of the runs kept."""
    runs = run_folders(output_dir / "runs", warn=False)
    newest = next((r for r in runs if r.summary is not None), None)
    if newest is not None:
        _point_latest(output_dir, newest.path)
        try:
            for old in prunable(runs, newest, keep_runs, keep_days, datetime.now(UTC)):
                log.info("retention: removing %s", old.path)
                shutil.rmtree(old.path)
        except OSError as exc:
            log.warning("retention: could not remove an old run (%s); it is retried next run", exc.strerror)
    _atomic_text(output_dir / "index.html", render_history(previous_summaries(output_dir)))


def prunable(
    runs: list[RunFolder], latest: RunFolder, keep_runs: int, keep_days: int, now: datetime
) -> list[RunFolder]:
    """The runs retention removes: only runs older than `latest` (never `latest` itself, never a newer
    one), beyond the `keep_runs` newest (0: no limit; `latest` counts) or older than `keep_days` days
    (0: no limit). A damaged run counts like any other, by the time in its name."""
    older = [r for r in runs if run_order(r.name) < run_order(latest.name)]  # newest first
    cutoff = now - timedelta(days=keep_days) if keep_days > 0 else None
    removed = []
    for position, run in enumerate(older, start=2):
        when = run_time(run.name)
        if (keep_runs > 0 and position > keep_runs) or (cutoff is not None and when is not None and when < cutoff):
            removed.append(run)
    return removed


def _remove_stale(output_dir: Path) -> None:
    """Staging folders and temporary files left by a killed run; young ones may be another run's."""
    limit = time.time() - STALE_AFTER.total_seconds()
    leftovers = [p for p in (output_dir / "runs").iterdir() if _STAGING.match(p.name)]
    leftovers += [p for p in output_dir.iterdir() if _TEMPORARY.match(p.name)]
    for path in leftovers:
        try:
            if path.lstat().st_mtime >= limit:
                continue
            log.warning("removing %s, left behind by a run that did not finish", path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            log.warning("could not remove %s: %s", path, exc.strerror)


def _free_name(runs_dir: Path, run_id: str) -> Path:
    """`runs/<run-id>`, else `-2`, `-3`...: a name no published or staging run uses (under the lock)."""
    taken = {p.name for p in runs_dir.iterdir()}
    staged = {_staging_run(n) for n in taken if _STAGING.match(n)}
    candidate, n = run_id, 1
    while candidate in taken or candidate in staged:
        n += 1
        candidate = f"{run_id}-{n}"
    return runs_dir / candidate


def _staging_run(name: str) -> str:
    return name[1:].rsplit("-", 1)[0]


def _point_latest(output_dir: Path, final: Path) -> None:
    latest = output_dir / "latest"
    target = Path("runs") / final.name
    if latest.is_symlink() and Path(os.readlink(latest)) == target:
        return
    link = output_dir / ".latest.tmp"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target, target_is_directory=True)
    if latest.is_dir() and not latest.is_symlink():
        shutil.rmtree(latest)  # a directory left by something else; a symlink from now on
    os.replace(link, latest)
    _fsync(output_dir)
