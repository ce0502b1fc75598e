"""Photo upload pipeline: dossiers.uploads.process_image on a 12 MP phone JPEG.

Compared, in one fresh process, with a bare Pillow full decode of the same file
and with the naive pipeline (full decode, exif_transpose, LANCZOS, save). The
ratios use CPU time (single-threaded work, robust on a busy machine); wall
times are reported next to them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from bench.harness import PYTHON, VAR_DIR, Context, Result, bench_env
from bench.photos import HEIGHT, WIDTH, phone_photo

PATH = "photo upload pipeline"


def photo_file() -> str:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "phone-12mp.jpg"
    if not path.exists():
        path.write_bytes(phone_photo())
    return str(path)


def worker(*args: str) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - our interpreter and module
        [PYTHON, "-m", "bench.photo_worker", *args],
        env=bench_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(ctx: Context) -> list[Result]:
    path = photo_file()
    times = worker("time", path, "3" if ctx.quick else "9")
    figures = {
        "image": f"{WIDTH}x{HEIGHT} JPEG q90, EXIF orientation 6",
        "file_bytes": Path(path).stat().st_size,
        **times,
    }
    return [
        Result(
            path=PATH,
            ratio_name="process_image ÷ bare Pillow full decode",
            target="<= 1.0",
            ratio=times["ours"]["cpu_ms"] / times["decode"]["cpu_ms"],
            figures=figures,
            measured_by="CPU time, median",
        ),
        Result(
            path=PATH,
            ratio_name="naive pipeline ÷ process_image",
            target=">= 2.0",
            ratio=times["naive"]["cpu_ms"] / times["ours"]["cpu_ms"],
            figures=figures,
            measured_by="CPU time, median",
        ),
    ]
