"""Run one invocation of a real handler in this (fresh) process and write what it cost as JSON.

    python -m bench.invoke_once LAMBDA_DIR EVENT_JSON RESULT_JSON [TIMEOUT_SECONDS]

The process's environment is the function's. The handler module is imported and its clients are built first
(what a warm container holds); then the kernel's peak-RSS mark is reset (`/proc/self/clear_refs`) so the
peak read afterwards (VmHWM) is the peak during the invocation itself, init included in the baseline.
With BENCH_PROFILE=PATH in the environment the invocation runs under cProfile and the top of its cumulative
profile is written to PATH (the engine's thread pools then run inline, so that the profile sees all work).
With BENCH_MESSAGE_SIZES=PATH the size of every SNS message the function publishes (through its real
publisher, to the real topic) is appended to PATH, one a line."""

from __future__ import annotations

import cProfile
import importlib.util
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

from devenv.worker import LocalLambdaContext

ROOT = Path(__file__).resolve().parents[1]


def _status(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    return 0


class _InlinePool:
    """A ThreadPoolExecutor stand-in that runs everything in the calling thread (cProfile follows one thread)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> _InlinePool:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def map(self, function: Any, *iterables: Any) -> Any:
        return [function(*args) for args in zip(*iterables, strict=False)]


def _run_engine_pools_inline() -> None:
    """Profiling only: the engine's thread pools run inline, so the profile covers every blob's work."""
    from azs3copy.steps import download, find_blobs

    for step in (download, find_blobs):
        setattr(step, "ThreadPoolExecutor", _InlinePool)  # noqa: B010 (a patch, for profiling only)


def _record_message_sizes(path: Path) -> None:
    """Wrap the real SNS publisher so every message it sends also has its size appended to `path`."""
    from azs3copy.backends.sns import SnsPublisher

    send = SnsPublisher._send

    def recording(self: SnsPublisher, topic: str, bodies: list[str]) -> None:
        send(self, topic, bodies)
        with path.open("a") as out:
            out.writelines(f"{len(body.encode())}\n" for body in bodies)

    SnsPublisher._send = recording  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    directory, event_path, result_path = argv[0], Path(argv[1]), Path(argv[2])
    timeout = float(argv[3]) if len(argv) > 3 else 900.0
    event: dict[str, Any] = json.loads(event_path.read_text())
    rss_start = _status("VmRSS")
    spec = importlib.util.spec_from_file_location("handler", ROOT / "lambdas" / directory / "handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if os.environ.get("BENCH_MESSAGE_SIZES"):
        _record_message_sizes(Path(os.environ["BENCH_MESSAGE_SIZES"]))
    module.function.deps()  # clients, secret and Azure source: what a warm container already holds
    baseline = _status("VmRSS")
    peak_init = _status("VmHWM")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    started = time.monotonic()
    error = None
    result: Any = None
    profiler = cProfile.Profile() if os.environ.get("BENCH_PROFILE") else None
    if profiler:
        _run_engine_pools_inline()
        profiler.enable()
    try:
        result = module.lambda_handler(event, LocalLambdaContext.starting_now(directory, timeout))
    except Exception as exc:  # recorded, not raised: the parent decides
        error = f"{type(exc).__name__}: {exc}"
    elapsed = time.monotonic() - started
    if profiler:
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(120)
        Path(os.environ["BENCH_PROFILE"]).write_text(text.getvalue())
    result_path.write_text(
        json.dumps(
            {
                "seconds": elapsed,
                "rss_interpreter": rss_start,
                "rss_after_init": baseline,
                "peak_init": peak_init,
                "peak_invocation": _status("VmHWM"),
                "result": result,
                "error": error,
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
