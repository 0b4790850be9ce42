"""A local Ray cluster for the sandbox: one head process on free ports, ended by its PID.

Like the clusters KubeRay starts for the operator's RayJobs, it requires Ray's token authentication: a
random token per head, in the environment of every Ray process (so job drivers and workers connect with it)
and in the headers of the stand-in's Jobs API client. Another local user who finds the port cannot submit.

Ray is optional (the `train` extra); `available()` says whether this environment has it.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def available() -> bool:
    return importlib.util.find_spec("ray") is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray_env(token: str) -> dict[str, str]:
    # PATH first holds this interpreter's bin/, so an entrypoint's `python` is the one with the runtimes.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
            "RAY_USAGE_STATS_ENABLED": "0", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2"}


class LocalRay:
    def __init__(self, workdir: Path, num_cpus: int | None = None):
        self.workdir = workdir
        self.num_cpus = num_cpus or max(2, os.cpu_count() or 2)
        self.process: subprocess.Popen | None = None
        self.dashboard_url: str | None = None
        self.token = secrets.token_hex(32)

    @property
    def headers(self) -> dict[str, str]:
        """What a Jobs API client sends to be let in."""
        return {"Authorization": f"Bearer {self.token}"}

    def start(self, timeout: float = 120.0) -> str:
        """Start the head (once) and return the dashboard URL the Jobs API listens on."""
        if self.dashboard_url:
            return self.dashboard_url
        ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
        gcs, dashboard = free_port(), free_port()
        temp = Path("/tmp") / f"llmops-ray-{os.getpid()}"  # Ray's socket paths must stay short
        log = (self.workdir / "ray-head.log").open("ab")
        self.process = subprocess.Popen(
            [ray, "start", "--head", "--block", f"--port={gcs}", f"--dashboard-port={dashboard}",
             "--dashboard-host=127.0.0.1", f"--num-cpus={self.num_cpus}", f"--temp-dir={temp}",
             "--include-dashboard=true", "--disable-usage-stats"],
            env=ray_env(self.token), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{dashboard}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ray head exited with {self.process.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(urllib.request.Request(f"{url}/api/version", headers=self.headers),
                                            timeout=2):
                    self.dashboard_url = url
                    return url
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"the local Ray head did not answer on {url} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            # The whole session: raylet, GCS, dashboard and workers were started under the head's group.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None
        self.dashboard_url = None
