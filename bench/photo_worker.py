"""Photo measurements, each in a fresh process (`python -m bench.photo_worker MODE PATH`).

- `time ROUNDS NAME=PATH ...`: CPU and wall time of a bare decode, process_image and
  the naive pipeline (at the size process_image writes) for each photo, in an order
  shuffled every round (seeded), medians; prints JSON.
- `loop PATH SECONDS`: process_image on PATH again and again (what the profiler of
  a missed row samples).
- `memory PATH WHICH`: peak RSS growth of one run of `ours`, `naive` or `decode` in
  this fresh process; prints JSON. Pillow's pixel buffers are C allocations that
  tracemalloc never sees: the kernel's high-water mark does. It is read from
  /proc/self/status (VmHWM, reset just before the run by writing 5 to
  /proc/self/clear_refs), not from ru_maxrss, which a child inherits from the
  process that started it.
"""

from __future__ import annotations

import functools
import gc
import io
import json
import os
import random
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


def _conversion(data: bytes, size: tuple[int, int]) -> Callable[[], Any] | None:
    """The colour conversion alone, as process_image runs it (the same cached
    transform, in place) on a frame of the stored size; None without a profile.
    LittleCMS's 8-bit tables take the same time whatever the pixels, so the frame
    converted again and again is timed fairly."""
    from PIL import Image

    from dossiers.uploads import _as_srgb

    with Image.open(io.BytesIO(data)) as image:
        icc_profile = image.info.get("icc_profile")
        if not icc_profile:
            return None
        image.draft("RGB", size)
        frame = image.convert("RGB").resize(size)
    return functools.partial(_as_srgb, frame, icc_profile)


def measure_time(photos: dict[str, bytes], rounds: int) -> dict[str, Any]:
    from bench.photos import bare_decode, naive_pipeline

    ours = _process_image()
    candidates: dict[tuple[str, str], Callable[[], Any]] = {}
    output: dict[str, list[int]] = {}
    for photo, data in photos.items():
        stored = ours(data)  # also the warm-up: imports, codec tables, ICC profiles
        side = max(stored.width, stored.height)
        output[photo] = [stored.width, stored.height]
        bare_decode(data)
        naive_pipeline(data, max_side=side)
        candidates[(photo, "decode")] = functools.partial(bare_decode, data)
        candidates[(photo, "ours")] = functools.partial(ours, data)
        candidates[(photo, "naive")] = functools.partial(naive_pipeline, data, max_side=side)
        conversion = _conversion(data, (stored.width, stored.height))
        if conversion is not None:
            conversion()
            candidates[(photo, "convert")] = conversion
    runs: dict[tuple[str, str], dict[str, list[float]]] = {
        key: {"cpu": [], "wall": []} for key in candidates
    }
    order = list(candidates)
    shuffler = random.Random(19)  # noqa: S311 - an order, not a secret
    for _ in range(rounds):
        shuffler.shuffle(order)
        for key in order:
            cpu, wall = _timed(candidates[key])
            runs[key]["cpu"].append(cpu)
            runs[key]["wall"].append(wall)
    from PIL import Image

    report: dict[str, Any] = {"rounds": rounds}
    for (photo, name), values in runs.items():
        report.setdefault(photo, {"output_size": output[photo]})[name] = {
            "cpu_ms": round(statistics.median(values["cpu"]) * 1000, 1),
            "cpu_ms_min_max": [
                round(min(values["cpu"]) * 1000, 1),
                round(max(values["cpu"]) * 1000, 1),
            ],
            "wall_ms": round(statistics.median(values["wall"]) * 1000, 1),
        }
    # Set by dossiers.uploads (ATTACHMENT_IMAGE_BLOCKS_KEPT), for all alike.
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
    mode = sys.argv[1]
    if mode == "loop":  # process_image over and over, for the profiler (bench.run --profile)
        data = Path(sys.argv[2]).read_bytes()
        ours = _process_image()
        ours(data)  # imports and tables loaded before the profiler starts
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        deadline = time.monotonic() + float(sys.argv[3])
        runs = 0
        while time.monotonic() < deadline:
            ours(data)
            runs += 1
        report: dict[str, Any] = {"runs": runs}
    elif mode == "time":
        photos = {}
        for item in sys.argv[3:]:
            name, _, path = item.partition("=")
            photos[name] = Path(path).read_bytes()
        report = measure_time(photos, int(sys.argv[2]))
    else:
        report = measure_memory(Path(sys.argv[2]).read_bytes(), sys.argv[3])
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
