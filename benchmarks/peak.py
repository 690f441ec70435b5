"""Run a module as `python -m` would, then write its peak RSS (MiB) to a file.

The peak is the kernel's VmHWM of this process's memory after exec: getrusage's ru_maxrss would
also count the parent's memory that the child held between fork and exec.

    python -m benchmarks.peak OUT.json analyzer report ...
"""

from __future__ import annotations

import atexit
import json
import runpy
import sys
from pathlib import Path


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)  # kB
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def main() -> None:
    out, module, *args = sys.argv[1:]
    atexit.register(lambda: Path(out).write_text(json.dumps({"peak_rss_mib": peak_rss_mib()})))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
