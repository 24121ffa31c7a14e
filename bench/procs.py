"""Child processes of the bench (services, baselines, py-spy): start, probe, measure, stop.

Every child is registered; `stop_all()` (called on the way out, also on Ctrl-C and errors)
SIGTERMs whatever still runs, waits a bounded time, then SIGKILLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_CHILDREN: list[subprocess.Popen[bytes]] = []


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int | None = None
    rss_samples: list[tuple[float, int]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def status_kib(self, field_name: str) -> int | None:
        """VmRSS, VmHWM, ... of /proc/<pid>/status in KiB (None once the process is gone)."""
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        match = re.search(rf"^{field_name}:\s+(\d+) kB", text, re.MULTILINE)
        return int(match.group(1)) if match else None

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the process used so far."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(
    name: str,
    argv: Sequence[str],
    log: Path,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
) -> Child:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(  # our own modules and tools
            list(argv),
            env={**os.environ, **(env or {})},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Own session: Ctrl-C reaches only the bench, which stops children in order.
            start_new_session=True,
        )
    _CHILDREN.append(process)
    return Child(name, process, log, port)


def python_module(
    name: str, module: str, args: Sequence[str], log: Path, env: Mapping[str, str], port: int
) -> Child:
    return spawn(name, [sys.executable, "-m", module, *args], log, env, port)


async def http_get(port: int, path: str, within: float = 2.0) -> tuple[int, bytes]:
    """A minimal HTTP/1.1 GET on 127.0.0.1 (the services' ops server closes after replying)."""

    async def get() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        head, _, body = raw.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body

    return await asyncio.wait_for(get(), within)


async def wait_ready(child: Child, within: float = 90.0) -> None:
    """Poll /readyz until 200; fail early if the process died."""
    assert child.port is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited ({child.process.returncode}):\n{child.tail()}")
        with contextlib.suppress(OSError, TimeoutError, IndexError, ValueError):
            status, _ = await http_get(child.port, "/readyz")
            if status == 200:
                return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{child.name} not ready after {within}s:\n{child.tail()}")


async def _metric_lines(child: Child) -> list[str]:
    """The lines of the child's /metrics; none if it is unreachable."""
    assert child.port is not None
    try:
        status, body = await http_get(child.port, "/metrics")
    except (OSError, TimeoutError, IndexError, ValueError):
        return []
    return body.decode(errors="replace").splitlines() if status == 200 else []


async def metric(child: Child, name: str) -> float | None:
    """Sum of a metric's samples on the child's /metrics (None if unreachable)."""
    total = None
    for line in await _metric_lines(child):
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
    return total


async def histogram(child: Child, name: str) -> dict[str, float]:
    """A histogram without labels on the child's /metrics: its cumulative bucket counts by
    upper bound (`le`), and `sum` and `count`; empty if unreachable."""
    values: dict[str, float] = {}
    for line in await _metric_lines(child):
        sample, _, value = line.rpartition(" ")
        if sample.startswith(name + '_bucket{le="'):
            values[sample[len(name) + 12 : -2]] = float(value)
        elif sample in (name + "_sum", name + "_count"):
            values[sample[len(name) + 1 :]] = float(value)
    return values


def _wait(process: subprocess.Popen[bytes], seconds: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=seconds)


async def stop(child: Child, sig: int = signal.SIGTERM, within: float = 30.0) -> None:
    """Signal, wait up to `within` seconds (in a thread, the loop keeps running), then kill."""
    process = child.process
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        await asyncio.to_thread(_wait, process, within)
        if process.poll() is None:
            process.kill()
            _wait(process, 10)
    with contextlib.suppress(ValueError):
        _CHILDREN.remove(process)


def stop_all(timeout: float = 20.0) -> None:
    """Synchronous last resort: SIGTERM every child still running, then SIGKILL."""
    for process in _CHILDREN:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in list(_CHILDREN):
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        _CHILDREN.remove(process)
