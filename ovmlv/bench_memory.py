"""Peak memory of encoding a clip, measured in a fresh subprocess per clip (peaks never mix).

The child builds the same classifier as the benchmark, encodes one clip and prints a JSON
line. Its peak RSS is read from /proc/self/status (VmHWM), not only from ru_maxrss: on
Linux a process started with vfork/posix_spawn from a big parent inherits the parent's RSS
high-water mark in ru_maxrss across exec, while VmHWM belongs to the child's own memory map.
After the model is built the high-water mark is reset (/proc/self/clear_refs), so the peak
of the encoding phase is reported on its own too (model loading has its own transient peak).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

_MARK = "OVMLV_BENCH_MEMORY "


def _status_kib(field: str) -> int | None:
    """A `kB` field of /proc/self/status (VmRSS, VmHWM), or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class _RssSampler:
    """Samples the RSS every few ms in a thread: a fallback peak when VmHWM cannot be reset."""

    def __init__(self, interval_s: float = 0.02) -> None:
        import psutil

        self._process, self._interval = psutil.Process(), interval_s
        self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def child_main(argv: list[str]) -> int:
    """Subprocess entry: argv = [options JSON, video path]; prints one JSON line."""
    from .bench_figures import BenchOptions, build_model, make_classifier, set_threads

    options = BenchOptions(**json.loads(argv[0]))
    set_threads(options.threads)
    model = build_model(options)
    classifier = make_classifier(model, options)
    mib = 1024.0
    after_load = {"rss_mib": (_status_kib("VmRSS") or 0) / mib, "hwm_mib": (_status_kib("VmHWM") or 0) / mib}
    reset = _reset_peak()
    start, start_cpu = time.perf_counter(), time.process_time()
    with _RssSampler() as sampler:
        state = classifier.encode_video(argv[1])
    elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    hwm = _status_kib("VmHWM")
    report = {
        "windows": state.num_windows,
        "encode_s": elapsed,
        "encode_cpu_s": elapsed_cpu,
        "after_load": after_load,
        "peak_rss_mib": max(after_load["hwm_mib"], (hwm or 0) / mib) if reset else (hwm or 0) / mib,
        "encode_peak_rss_mib": (hwm / mib) if (reset and hwm) else sampler.peak / 2**20,
        "encode_peak_source": "VmHWM after clear_refs" if (reset and hwm) else "psutil sampling (20 ms)",
        "sampled_peak_rss_mib": sampler.peak / 2**20,
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / mib,  # KiB on Linux
    }
    print(_MARK + json.dumps(report), flush=True)
    return 0


def measure_peak(options_json: str, video: str, timeout_s: float = 3600.0) -> dict[str, Any]:
    """Run `child_main` in a fresh Python process for `video`; its report as a dict."""
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    code = "import sys; from ovmlv.bench_memory import child_main; sys.exit(child_main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", code, options_json, video],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout_s,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith(_MARK):
            return json.loads(line[len(_MARK) :])
    tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
    raise RuntimeError(f"memory subprocess failed (exit {done.returncode}): {' | '.join(tail)}")
