"""A test server process on loopback: wait until it answers, stop it cleanly."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import requests


def wait_ready(process: subprocess.Popen, url: str, log: Path, name: str, interval: float) -> None:
    """Poll `url` until it answers 200; fail with the log's tail if the process exits first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(interval)
    raise RuntimeError(f"{name} did not become ready in 60s")


def stop(process: subprocess.Popen | None) -> None:
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
