"""Cold start figures: `complaintdesk --help`, and `complaintdesk run` until /healthz answers.

    python bench/cold_start.py [--runs 5] [--root PATH]

`--root` points at another checkout (e.g. the main branch) to compare; its code runs with this
interpreter. `run` is started on a fresh SQLite file (the first start migrates it) and again on
the migrated file. Prints the median and range of each; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

LIMIT_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def env_for(root: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTDESK_")}
    env.update(PYTHONPATH=str(root), **settings)
    return env


def time_help(root: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "--help"],
        env=env_for(root),
        cwd=root,  # `-m` looks in the working directory first
        stdout=subprocess.DEVNULL,
        check=True,
        timeout=LIMIT_SECONDS,
    )
    return time.perf_counter() - started


def time_run(root: Path, db: Path) -> float:
    port = free_port()
    env = env_for(
        root,
        COMPLAINTDESK_DATABASE_URL=f"sqlite://{db}",
        COMPLAINTDESK_PORT=str(port),
        COMPLAINTDESK_DATA_DIR=str(db.parent / "data"),
    )
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        env=env,
        cwd=db.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - started < LIMIT_SECONDS:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    if r.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("no answer from /healthz")
    finally:
        process.terminate()
        process.wait(timeout=LIMIT_SECONDS)


def show(name: str, values: list[float]) -> None:
    print(
        f"{name:<28} median {statistics.median(values):6.2f} s  "
        f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    root = args.root.resolve()
    print(f"code: {root}; python {sys.version.split()[0]}; load {os.getloadavg()[0]:.1f}")
    show("complaintdesk --help", [time_help(root) for _ in range(args.runs)])
    fresh, warm = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            db = Path(folder) / "bench.sqlite3"
            fresh.append(time_run(root, db))
            warm.append(time_run(root, db))
    show("run → /healthz (new db)", fresh)
    show("run → /healthz (migrated db)", warm)


if __name__ == "__main__":
    main()
