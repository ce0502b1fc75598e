"""Photo memory: peak RSS growth of process_image on a 12 MP JPEG ÷ w·h·3.

Each measurement runs in a fresh process (ru_maxrss is a high-water mark), after
the imports and the file read, so only the processing itself is counted.
"""

from __future__ import annotations

from bench.benchmarks.photo import photo_file, worker
from bench.harness import Context, Result
from bench.photos import HEIGHT, WIDTH

RGB_BYTES = WIDTH * HEIGHT * 3
# What `bench.run --profile` records for this row when it misses.
PROFILE_NOTE = (
    "a memory row (the kernel's high-water mark); py-spy samples CPU, and Pillow's "
    "buffers are invisible to tracemalloc: compare VmHWM around each step of "
    "bench.photo_worker's memory mode instead"
)


def run(ctx: Context) -> list[Result]:
    path = photo_file()
    ours = worker("memory", path, "ours")["peak_growth_bytes"]
    naive = worker("memory", path, "naive")["peak_growth_bytes"]
    decode = worker("memory", path, "decode")["peak_growth_bytes"]
    return [
        Result(
            path="photo memory",
            ratio_name="peak RSS growth ÷ full RGB image (w·h·3)",
            target="<= 1.0",
            ratio=ours / RGB_BYTES,
            figures={
                "rgb_image_bytes": RGB_BYTES,
                "ours_peak_growth_bytes": ours,
                "naive_peak_growth_bytes": naive,
                "bare_decode_peak_growth_bytes": decode,
            },
            measured_by="ru_maxrss delta in a fresh process",
        )
    ]
