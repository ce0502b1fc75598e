"""Photo measurements, each in a fresh process (`python -m bench.photo_worker MODE PATH`).

- `time PATH ROUNDS`: CPU and wall time of a bare decode, process_image and the naive
  pipeline, interleaved, medians; prints JSON.
- `memory PATH WHICH`: peak RSS growth of one run of `ours`, `naive` or `decode` in
  this fresh process; prints JSON. Pillow's pixel buffers are C allocations that
  tracemalloc never sees: the kernel's high-water mark does. It is read from
  /proc/self/status (VmHWM, reset just before the run by writing 5 to
  /proc/self/clear_refs), not from ru_maxrss, which a child inherits from the
  process that started it.
"""

from __future__ import annotations

import gc
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import django


def _process_image() -> Callable[[bytes], Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    from dossiers.uploads import process_image

    return lambda data: process_image(io.BytesIO(data))


def _timed(function: Callable[[], Any]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    function()
    return time.process_time() - cpu, time.perf_counter() - wall


def measure_time(data: bytes, rounds: int) -> dict[str, Any]:
    from bench.photos import bare_decode, naive_pipeline

    ours = _process_image()
    runs: dict[str, dict[str, list[float]]] = {
        name: {"cpu": [], "wall": []} for name in ("decode", "ours", "naive")
    }
    candidates: dict[str, Callable[[], Any]] = {
        "decode": lambda: bare_decode(data),
        "ours": lambda: ours(data),
        "naive": lambda: naive_pipeline(data),
    }
    for function in candidates.values():  # warm-up: imports, codec tables, ICC profiles
        function()
    for _ in range(rounds):
        for name, function in candidates.items():
            cpu, wall = _timed(function)
            runs[name]["cpu"].append(cpu)
            runs[name]["wall"].append(wall)
    from PIL import Image

    report: dict[str, Any] = {
        name: {
            "cpu_ms": round(statistics.median(values["cpu"]) * 1000, 1),
            "wall_ms": round(statistics.median(values["wall"]) * 1000, 1),
        }
        for name, values in runs.items()
    }
    # Set by dossiers.uploads (ATTACHMENT_IMAGE_BLOCKS_KEPT), for all three alike.
    report["pillow_blocks_kept"] = Image.core.get_blocks_max()
    return report


def measure_memory(data: bytes, which: str) -> dict[str, Any]:
    from bench.photos import bare_decode, naive_pipeline

    function: Callable[[bytes], Any]
    if which == "ours":
        function = _process_image()
    elif which == "naive":
        function = naive_pipeline
    else:
        function = bare_decode
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # high-water mark := current RSS
    before = _status_kib("VmRSS")
    result = function(data)
    peak = _status_kib("VmHWM")
    del result
    return {"which": which, "peak_growth_bytes": (peak - before) * 1024}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def main() -> None:
    mode, path = sys.argv[1], Path(sys.argv[2])
    data = path.read_bytes()
    if mode == "time":
        report = measure_time(data, int(sys.argv[3]))
    else:
        report = measure_memory(data, sys.argv[3])
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
