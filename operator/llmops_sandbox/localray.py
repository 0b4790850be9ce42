"""A local Ray cluster for the sandbox: one head process on free ports, a child of the sandbox.

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
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from llmops_sandbox import processes
from llmops_sandbox.ports import free_port


def available() -> bool:
    return importlib.util.find_spec("ray") is not None


def ray_env(token: str) -> dict[str, str]:
    # PATH first holds this interpreter's bin/, so an entrypoint's `python` is the one with the runtimes.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
            "RAY_USAGE_STATS_ENABLED": "0", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2"}


STOP_GRACE_SECONDS = 15.0


class LocalRay:
    """The head is a child of the sandbox, and everything Ray starts stays below it (see processes.py)."""

    def __init__(self, workdir: Path, num_cpus: int | None = None):
        self.workdir = workdir
        self.num_cpus = num_cpus or max(2, os.cpu_count() or 2)
        self.process: subprocess.Popen | None = None
        self.dashboard_url: str | None = None
        self.token = secrets.token_hex(32)
        self._url: str | None = None
        self._log: Path = workdir / "ray-head.log"
        self.temp_dir: Path | None = None
        """Ray's session files and sockets while the head runs, under /tmp (Ray's socket paths must stay short, so
        not under the workdir); removed by the head's keeper once every Ray process is gone, also when the sandbox
        was SIGKILLed, and by `stop` should the keeper itself have been killed."""
        self.stopping = threading.Event()
        """Set by `stop`: blocking waits on the head give up."""

    @property
    def headers(self) -> dict[str, str]:
        """What a Jobs API client sends to be let in."""
        return {"Authorization": f"Bearer {self.token}"}

    def launch(self) -> None:
        """Start the head process, once; call it from a thread that outlives the head (the stand-ins' loop)."""
        if self.process is not None:
            return
        ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
        # Every port free, the agent's and the client server's too: another Ray on this machine holds the defaults.
        # Ray's daemons bind them seconds later; see ports.py for why they stay free until then.
        gcs, dashboard, agent, client = free_port(), free_port(), free_port(), free_port()
        temp = self.temp_dir = Path(tempfile.mkdtemp(prefix="llmops-ray-", dir="/tmp"))
        self.stopping.clear()
        with self._log.open("ab") as log:
            self.process = processes.popen(
                [ray, "start", "--head", "--block", f"--port={gcs}", f"--dashboard-port={dashboard}",
                 "--dashboard-host=127.0.0.1", f"--dashboard-agent-listen-port={agent}",
                 f"--ray-client-server-port={client}", f"--num-cpus={self.num_cpus}", f"--temp-dir={temp}",
                 "--include-dashboard=true", "--disable-usage-stats"],
                STOP_GRACE_SECONDS, remove=str(temp), env=ray_env(self.token), stdout=log, stderr=subprocess.STDOUT)
        self._url = f"http://127.0.0.1:{dashboard}"

    def wait_ready(self, timeout: float = 120.0) -> str:
        """Block until the launched head answers; the dashboard URL the Jobs API listens on."""
        if self.dashboard_url:
            return self.dashboard_url
        process, url = self.process, self._url
        if process is None or url is None:
            raise RuntimeError("the local Ray head was not launched")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping.is_set():
            if process.poll() is not None:
                raise RuntimeError(f"ray head exited with {process.returncode}; see {self._log}")
            try:
                with urllib.request.urlopen(urllib.request.Request(f"{url}/api/version", headers=self.headers),
                                            timeout=2):
                    self.dashboard_url = url
                    return url
            except OSError:
                self.stopping.wait(0.5)
        raise TimeoutError(f"the local Ray head did not answer on {url} within {timeout:.0f}s")

    def stop(self) -> None:
        """SIGTERM lets `ray start --block` stop its daemons; SIGKILL after the grace ends what is left."""
        self.stopping.set()
        processes.stop_blocking(self.process, STOP_GRACE_SECONDS)
        self.process = None
        if self.temp_dir is not None:  # every Ray process is gone: nothing writes there any more
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None
        self.dashboard_url = None
        self._url = None
