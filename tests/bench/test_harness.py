"""The benchmark harness's own logic (the benchmarks themselves run with `make bench`)."""

from __future__ import annotations

from bench.harness import BASE_DIR, Result, percentile, procfile_web_command
from bench.run import BENCHMARKS, _unavailable, table


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0


def test_target_at_the_bound_is_met_on_both_sides() -> None:
    assert Result("p", "r", ">= 0.45", ratio=0.45).met is True
    assert Result("p", "r", ">= 0.45", ratio=0.449).met is False
    assert Result("p", "r", "<= 1.5", ratio=1.5).met is True
    assert Result("p", "r", "<= 1.5", ratio=1.51).met is False


def test_a_benchmark_that_cannot_run_says_why_and_has_no_ratio() -> None:
    rows = _unavailable("push_faults", "fake FCM server missing")
    # One row per ratio of the module (push under faults: two drain ratios, three of
    # duplicates).
    assert [row.as_dict()["status"] for row in rows] == [
        "not available: fake FCM server missing"
    ] * 5
    assert all(row.ratio is None and row.as_dict()["met"] is None for row in rows)
    assert "| push under faults |" in table(rows)
    assert "not available: fake FCM server missing" in table(rows)


def test_every_row_of_the_issue_table_is_a_benchmark() -> None:
    paths = [path for rows in BENCHMARKS.values() for path, _, _ in rows]
    assert paths == [
        "dossier status read",
        "dossier status read",
        "photo upload pipeline",
        "photo upload pipeline",
        "photo upload pipeline",
        "photo memory",
        *["live update"] * 3,
        "many idle sockets",
        "push fan-out",
        *["push under faults"] * 5,
        "OTP",
        *["wallet attach"] * 2,
        "signed result verification",
        *["payment callbacks"] * 3,
    ]
    for name in BENCHMARKS:
        assert (BASE_DIR / "bench" / "benchmarks" / f"{name}.py").exists()


def test_server_runs_the_procfile_web_command_on_loopback() -> None:
    argv = procfile_web_command("bench.asgi:application", 8123)
    assert argv[1:4] == ["-m", "uvicorn", "bench.asgi:application"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == "8123"
    assert argv[argv.index("--forwarded-allow-ips") + 1] == "127.0.0.1"
    assert "--lifespan" in argv
    assert "--timeout-graceful-shutdown" in argv


def test_display_p3_profile_is_a_valid_icc_profile_that_changes_colours() -> None:
    import io

    from PIL import Image, ImageCms

    from bench.photos import display_p3_profile

    data = display_p3_profile()
    assert len(data) == int.from_bytes(data[:4], "big")  # the header's size is the size
    profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
    assert ImageCms.getProfileDescription(profile).strip() == "Display P3 (bench)"
    # P3's primaries are wider than sRGB's: a colour's sRGB values differ.
    image = Image.new("RGB", (1, 1), (114, 67, 235))
    converted = ImageCms.profileToProfile(
        image, profile, ImageCms.createProfile("sRGB"), outputMode="RGB"
    )
    assert converted is not None
    assert converted.getpixel((0, 0)) != (114, 67, 235)


def test_dossier_read_reports_median_and_spread_of_rounds() -> None:
    from bench.benchmarks.dossier_read import spread

    assert spread([0.4, 0.6, 0.5, 0.3, 0.7]) == {
        "median": 0.5,
        "min": 0.3,
        "max": 0.7,
        "rounds": 5,
    }


def test_an_idle_profile_leaves_out_the_event_loops_own_wait() -> None:
    # With py-spy --idle, uvloop waiting for the next event shows as a sample whose
    # top frame is asyncio's Runner.run: a latency row's profile counts it as idle.
    from bench.harness import VAR_DIR
    from bench.profile import summarise

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    raw = VAR_DIR / "profile-test-idle.txt"
    loop = "main (uvicorn/main.py:1);Runner.run (asyncio/runners.py:118)"
    view = f"{loop};attach (documents/wallet.py:265);Connection.wait (psycopg/connection.py:495)"
    raw.write_text(f"{loop} 70\n{view} 30\n")
    try:
        waits_too = summarise(raw, also_idle=("Runner.run (asyncio/runners.py",))
        everything = summarise(raw)
    finally:
        raw.unlink()

    assert waits_too["busy_samples"] == 30
    assert waits_too["project_frames_inclusive"] == ["100.0% attach (documents/wallet.py:265)"]
    assert everything["busy_samples"] == 100


def test_every_row_says_how_it_is_profiled_when_it_misses() -> None:
    # bench.run --profile samples the API server with a module's `workload`; a row
    # whose work is elsewhere (a worker, a fresh process) samples it itself when
    # ctx.profiling; a memory row records why a CPU sampler has nothing to say.
    import importlib
    import inspect

    for name in BENCHMARKS:
        module = importlib.import_module(f"bench.benchmarks.{name}")
        profiled = (
            hasattr(module, "workload")
            or "ctx.profiling" in inspect.getsource(module)
            or hasattr(module, "PROFILE_NOTE")
        )
        assert profiled, name
