"""How a KServe InferenceService's components run on this machine (pure planning, plus the files they read).

The predictor (modelFormat huggingface, storageUri pvc://claim/path -> <pvc root>/claim/path) runs as
`python -m llmops_operator.servers.predictor`; the transformer's container runs the way the Job stand-in runs a
container (ConfigMap volumes written out, mount paths in env and args rewritten), with the arguments KServe
appends: --model_name <service> --predictor_host 127.0.0.1:<port> --http_port <port>.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops_operator.core.uris import PVC_ROOT_ENV
from llmops_sandbox.standins.jobs import ProcessPlan, UnrunnableJob, plan_process

PREDICTOR_MODULE = "llmops_operator.servers.predictor"
SUPPORTED_FORMATS = ("huggingface",)
HOST = "127.0.0.1"


class Unservable(ValueError):
    """A component the sandbox cannot run; `reason` is the condition reason KServe would give."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def model_directory(predictor: dict[str, Any], pvc_root: Path) -> Path:
    """Where the predictor's storageUri lives on this machine (pure)."""
    model = predictor.get("model") or {}
    fmt = (model.get("modelFormat") or {}).get("name")
    if fmt not in SUPPORTED_FORMATS:
        raise Unservable("NoSupportingRuntime", f"spec.predictor.model.modelFormat.name {fmt!r}: the sandbox serves "
                                                f"{', '.join(SUPPORTED_FORMATS)} models")
    uri = model.get("storageUri") or ""
    if not uri.startswith("pvc://"):
        raise Unservable("InvalidStorageUri",
                         f"spec.predictor.model.storageUri {uri!r}: the sandbox serves pvc:// URIs")
    return pvc_root / uri.removeprefix("pvc://")


def predictor_pod(obj: dict[str, Any]) -> dict[str, Any]:
    """The predictor's model container and volumes, as the Job stand-in's planner reads a Job."""
    predictor = obj["spec"]["predictor"]
    model = predictor.get("model") or {}
    container = {"name": "kserve-container", "command": ["true"], "env": model.get("env") or [],
                 "volumeMounts": model.get("volumeMounts") or []}
    return {"metadata": obj["metadata"],
            "spec": {"template": {"spec": {"containers": [container], "volumes": predictor.get("volumes") or []}}}}


def predictor_plan(obj: dict[str, Any], pvc_root: Path, port: int, python: str = sys.executable,
                   sources: dict[tuple[str, str], dict | None] | None = None, root: Path | None = None) -> ProcessPlan:
    """The sandbox predictor, with the model container's ConfigMap volumes written under `root` and its env
    pointing into them (the adapters file, for one)."""
    model_dir = model_directory(obj["spec"]["predictor"], pvc_root)
    argv = [python, "-m", PREDICTOR_MODULE, "--model_name", obj["metadata"]["name"], "--model_dir", str(model_dir),
            "--http_port", str(port), "--host", HOST]
    if root is None:
        return ProcessPlan(argv=argv, env={PVC_ROOT_ENV: str(pvc_root)})
    try:
        mounted = plan_process(predictor_pod(obj), sources or {}, root, python=python, claims=pvc_root)
    except UnrunnableJob as err:
        raise Unservable("InvalidSpec", f"spec.predictor: {err}") from None
    return ProcessPlan(argv=argv, env=mounted.env, files=mounted.files, directories=mounted.directories)


def transformer_pod(obj: dict[str, Any]) -> dict[str, Any]:
    """The transformer as the Job stand-in's planner reads a Job: metadata and a pod template."""
    transformer = obj["spec"]["transformer"]
    return {"metadata": obj["metadata"],
            "spec": {"template": {"spec": {"containers": transformer.get("containers") or [],
                                           "volumes": transformer.get("volumes") or []}}}}


def mount_hosts(pod: dict[str, Any], sources: dict[tuple[str, str], dict | None], root: Path,
                pvc_root: Path) -> dict[str, Path]:
    """Mount path -> host directory, as the Job planner places the volumes (it rewrites paths given as args)."""
    container = pod["spec"]["template"]["spec"]["containers"][0]
    paths = [m["mountPath"] for m in container.get("volumeMounts", [])]
    probe = {**pod, "spec": {"template": {"spec": {**pod["spec"]["template"]["spec"], "containers": [
        {**container, "command": ["true"], "args": paths, "env": []}]}}}}
    return dict(zip(paths, (Path(a) for a in plan_process(probe, sources, root, claims=pvc_root).argv[1:])))


def parent_mount_links(plan: ProcessPlan, hosts: dict[str, Path], tree: Path) -> dict[Path, Path]:
    """Make env values that name a parent of mount paths (LLMOPS_PROMPT_DIR=/etc/llmops/prompts/versions over
    .../versions/v1 and .../versions/v2) resolve: such a value points into `tree`, a copy of the container's
    directory layout in which each mount path is a link to its volume. Returns link -> target."""
    links: dict[Path, Path] = {}
    for name, value in plan.env.items():
        below = [m for m in hosts if value.startswith("/") and m.startswith(value.rstrip("/") + "/")]
        if below:
            plan.env[name] = str(tree / value.lstrip("/"))
            links.update({tree / m.lstrip("/"): hosts[m] for m in below})
    return links


@dataclass
class TransformerPlan:
    process: ProcessPlan
    links: dict[Path, Path]


def transformer_plan(obj: dict[str, Any], sources: dict[tuple[str, str], dict | None], root: Path, pvc_root: Path,
                     predictor_port: int, port: int, python: str = sys.executable) -> TransformerPlan:
    pod = transformer_pod(obj)
    if not pod["spec"]["template"]["spec"]["containers"]:
        raise Unservable("InvalidSpec", "spec.transformer.containers: at least one container is required")
    try:
        plan = plan_process(pod, sources, root, python=python, claims=pvc_root)
        links = parent_mount_links(plan, mount_hosts(pod, sources, root, pvc_root), root / "fs")
    except UnrunnableJob as err:
        raise Unservable("InvalidSpec", f"spec.transformer: {err}") from None
    plan.argv += ["--model_name", obj["metadata"]["name"], "--predictor_host", f"{HOST}:{predictor_port}",
                  "--http_port", str(port), "--enable_grpc", "false"]
    return TransformerPlan(plan, links)


def make_links(links: dict[Path, Path]) -> None:
    for link, target in links.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(target, target_is_directory=True)


def write_files(files: dict[Path, bytes]) -> list[Path]:
    """Write what changed, each file replaced atomically as the kubelet swaps a ConfigMap volume; the paths written."""
    written = []
    for path, data in files.items():
        if path.is_file() and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.tmp")
        staging.write_bytes(data)
        os.replace(staging, path)
        written.append(path)
    return written


def last_log_line(path: Path, limit: int = 300) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][-limit:] if lines else ""
