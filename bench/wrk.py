"""Drive wrk against 127.0.0.1 and read its figures."""

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Each request carries a random viewer's token; the floor ignores it, so both endpoints
# make wrk do the same work per request.
LUA_SCRIPT = """\
local tokens = {}
for line in io.lines("%(tokens_path)s") do
  tokens[#tokens + 1] = line
end
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_number", thread_count)
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_number or 0))
end

local headers = {}
function request()
  headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  return wrk.format(nil, nil, headers)
end
"""

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_DURATION = r"([\d.]+)(us|ms|s|m)\b"


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # socket errors plus non-2xx/3xx answers
    output: str


def wrk_ensure_installed() -> str:
    """Return the path of wrk, installing it with apt-get when running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit(
            "wrk is not installed. Install it (Debian: `sudo apt-get install -y wrk`) and rerun."
        )
    print("wrk is not installed: apt-get install -y wrk")
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, timeout=600)
    found = shutil.which("wrk")
    if not found:
        subprocess.run(["apt-get", "update"], check=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, timeout=600)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk could not be installed; install it and rerun.")
    return found


def wrk_write_script(*, directory: Path, tokens: list[str]) -> Path:
    """Write the tokens and the Lua script that sends each request with a random one."""
    tokens_path = directory / "tokens.txt"
    tokens_path.write_text("\n".join(tokens) + "\n")
    script_path = directory / "random_viewer.lua"
    script_path.write_text(LUA_SCRIPT % {"tokens_path": tokens_path})
    return script_path


def _milliseconds(value: str, unit: str) -> float:
    return float(value) * _UNIT_MS[unit]


def wrk_parse(output: str) -> WrkResult:
    """Read requests/s, p50, p99 and errors from `wrk --latency` output."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    p50 = re.search(rf"^\s+50%\s+{_DURATION}", output, re.MULTILINE)
    p99 = re.search(rf"^\s+99%\s+{_DURATION}", output, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in", output, re.MULTILINE)
    if not (rps and p50 and p99 and total):
        raise RuntimeError(f"Unexpected wrk output:\n{output}")
    errors = 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(group) for group in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return WrkResult(
        requests_per_second=float(rps.group(1)),
        p50_ms=_milliseconds(*p50.groups()),
        p99_ms=_milliseconds(*p99.groups()),
        requests=int(total.group(1)),
        errors=errors,
        output=output,
    )


def wrk_run(
    *,
    wrk: str,
    url: str,
    script: Path,
    connections: int,
    threads: int,
    duration: int,
    script_args: list[str] | None = None,
) -> WrkResult:
    """Load `url` for `duration` seconds and return what wrk measured.

    `script_args` reach the Lua script's `init(args)`.
    """
    command = [
        wrk,
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={duration}s",
        "--timeout=5s",
        f"--script={script}",
        "--latency",
        url,
    ]
    if script_args:
        command += ["--", *script_args]
    completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=duration + 60)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}):\n{completed.stdout}{completed.stderr}")
    return wrk_parse(completed.stdout)
