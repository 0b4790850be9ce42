"""Prompt versions and routing as the guardrail runtime reads them from mounted ConfigMaps.

The layout is what `builders/kserve.py` mounts: `<prompt dir>/<version>/prompt.json` (+ template.txt), one
directory per served version, and `routing.json` ({strategy, routes: [{version, configMap, weight}], stickyKey}).
Picking a version and rendering a template are pure; `MountedPrompts` re-reads the files when they change, so a
new traffic split (same ConfigMap name, new content) reaches the runtime without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from llmops_operator.builders.prompts import FORCE_HEADER, PROMPT_KEY, TEMPLATE_KEY, TOKEN_HEADER

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
STRATEGIES = ("random", "sticky")
BUCKETS = 10_000
"""Sticky routing hashes a key into this many buckets, so weights resolve to 0.01%."""


class PromptError(ValueError):
    """A prompt file, routing file or set of variables the runtime cannot use; the message names the culprit."""


@dataclass(frozen=True)
class PromptVersion:
    version: str
    template: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """temperature, maxTokens, topP, stop: as prompt.json writes them."""
    variables: tuple[str, ...] | None = None
    """Declared variables; None when the release did not declare them (then the placeholders count)."""
    messages: tuple[tuple[str, str], ...] | None = None
    """(role, content template) pairs the chat endpoint renders; None: the template is one user message."""

    @property
    def expected(self) -> tuple[str, ...]:
        if self.variables is not None:
            return self.variables
        texts = [self.template, *(content for _, content in self.messages or ())]
        return tuple(dict.fromkeys(name for text in texts for name in PLACEHOLDER.findall(text)))

    def render(self, values: Mapping[str, Any]) -> str:
        return render(self.template, values, self.expected)

    def render_messages(self, values: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The chat messages with their variables filled in (the template as one user message without any)."""
        if self.messages is None:
            return [("user", self.render(values))]
        return [(role, render(content, values, self.expected)) for role, content in self.messages]


@dataclass(frozen=True)
class Route:
    version: str
    weight: int


@dataclass(frozen=True)
class Routing:
    strategy: str
    routes: tuple[Route, ...]
    sticky_key: str | None = None
    evaluation_token: str | None = None
    """While a candidate is evaluated: the token a request must carry (TOKEN_HEADER) for FORCE_HEADER to count."""

    def pick(self, headers: Mapping[str, str], rng: random.Random | None = None) -> str:
        return pick_version(self, headers, rng)


def render(template: str, values: Mapping[str, Any], expected: tuple[str, ...]) -> str:
    """Replace every `{{ name }}`; every expected variable must be given, and nothing else."""
    missing = [name for name in expected if name not in values]
    if missing:
        raise PromptError(f"variables: missing {', '.join(missing)} (the template expects {', '.join(expected)})")
    undeclared = sorted(set(values) - set(expected))
    if undeclared:
        raise PromptError(f"variables: {', '.join(undeclared)} not declared by the template "
                          f"(it expects {', '.join(expected) or 'none'})")
    for name, value in values.items():
        if not isinstance(value, (str, int, float, bool)):
            raise PromptError(f"variables.{name}: expected a string or number, got {type(value).__name__}")
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


def bucket_of(key: str) -> int:
    """A stable bucket in [0, BUCKETS) for a sticky key: the same user lands on the same version on every replica."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def _choose(routes: tuple[Route, ...], point: float) -> str:
    """The route whose cumulative weight band holds `point` in [0, 1)."""
    total = sum(r.weight for r in routes)
    edge = 0.0
    for route in routes:
        edge += route.weight / total
        if point < edge:
            return route.version
    return next(r.version for r in reversed(routes) if r.weight > 0)


def forced_version(routing: Routing, headers: Mapping[str, str]) -> str | None:
    """The version FORCE_HEADER names, when the routing has it (weight 0 included: a candidate under evaluation)
    and TOKEN_HEADER carries the routing's evaluation token. Only the operator knows the token, and the routing
    holds one only during an evaluation: any other caller's FORCE_HEADER is ignored."""
    lowered = {k.lower(): v for k, v in headers.items()}
    wanted, token = lowered.get(FORCE_HEADER), lowered.get(TOKEN_HEADER)
    if wanted is None or token is None or routing.evaluation_token is None:
        return None
    if not hmac.compare_digest(token.encode(), routing.evaluation_token.encode()):
        return None
    return wanted if any(r.version == wanted for r in routing.routes) else None


def allowed_parameters(requested: Mapping[str, Any], version: PromptVersion) -> dict[str, Any]:
    """A caller's parameters within what the version allows: maxTokens at most the version's."""
    allowed = dict(requested)
    ceiling = version.parameters.get("maxTokens")
    if isinstance(ceiling, int) and isinstance(allowed.get("maxTokens"), int):
        allowed["maxTokens"] = min(allowed["maxTokens"], ceiling)
    return allowed


def pick_version(routing: Routing, headers: Mapping[str, str], rng: random.Random | None = None) -> str:
    """A forced version (FORCE_HEADER) first; then sticky: hash of the sticky header's value (random when the
    header is absent); random: by weight."""
    forced = forced_version(routing, headers)
    if forced is not None:
        return forced
    if routing.strategy == "sticky" and routing.sticky_key:
        lowered = {k.lower(): v for k, v in headers.items()}
        key = lowered.get(routing.sticky_key.lower())
        if key:
            return _choose(routing.routes, bucket_of(key) / BUCKETS)
    return _choose(routing.routes, (rng or random).random())


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PromptError(f"{path}: missing") from None
    except (OSError, json.JSONDecodeError) as err:
        raise PromptError(f"{path}: {err}") from None


def parse_version(document: Any, where: str, template: str | None = None) -> PromptVersion:
    if not isinstance(document, dict):
        raise PromptError(f"{where}: expected a JSON object")
    template = template if template is not None else document.get("template")
    if not isinstance(template, str) or not template:
        raise PromptError(f"{where}: template: expected a non-empty string")
    version = document.get("version")
    if not isinstance(version, str) or not version:
        raise PromptError(f"{where}: version: expected a non-empty string")
    parameters = document.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise PromptError(f"{where}: parameters: expected an object")
    variables = document.get("variables")
    if variables is not None and (not isinstance(variables, list) or not all(isinstance(v, str) for v in variables)):
        raise PromptError(f"{where}: variables: expected a list of names")
    return PromptVersion(version=version, template=template, parameters=dict(parameters),
                         variables=tuple(variables) if variables is not None else None,
                         messages=parse_messages(document.get("messages"), where))


def parse_messages(raw: Any, where: str) -> tuple[tuple[str, str], ...] | None:
    if raw is None:
        return None
    roles = ("system", "user", "assistant")
    if not isinstance(raw, list) or not raw or not all(
            isinstance(m, dict) and m.get("role") in roles and isinstance(m.get("content"), str) for m in raw):
        raise PromptError(f"{where}: messages: expected a non-empty list of {{role, content}}")
    return tuple((m["role"], m["content"]) for m in raw)


def load_version(directory: Path) -> PromptVersion:
    """A version directory: prompt.json, and template.txt when present (the exact template text)."""
    template_path = directory / TEMPLATE_KEY
    template = template_path.read_text() if template_path.is_file() else None
    return parse_version(_read_json(directory / PROMPT_KEY), str(directory / PROMPT_KEY), template)


def load_versions(root: Path) -> dict[str, PromptVersion]:
    """Every version directory under root, by version name."""
    if not root.is_dir():
        raise PromptError(f"{root}: prompt directory missing")
    versions = {}
    for directory in sorted(p for p in root.iterdir() if (p / PROMPT_KEY).is_file()):
        version = load_version(directory)
        versions[version.version] = version
    if not versions:
        raise PromptError(f"{root}: no prompt versions (no */{PROMPT_KEY})")
    return versions


def parse_routing(document: Any, where: str) -> Routing:
    if not isinstance(document, dict):
        raise PromptError(f"{where}: expected a JSON object")
    strategy = document.get("strategy", "random")
    if strategy not in STRATEGIES:
        raise PromptError(f"{where}: strategy: expected one of {', '.join(STRATEGIES)}, got {strategy!r}")
    raw_routes = document.get("routes")
    if not isinstance(raw_routes, list) or not raw_routes:
        raise PromptError(f"{where}: routes: expected a non-empty list")
    routes = []
    for index, raw in enumerate(raw_routes):
        if not isinstance(raw, dict) or not isinstance(raw.get("version"), str):
            raise PromptError(f"{where}: routes[{index}].version: expected a string")
        weight = raw.get("weight")
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
            raise PromptError(f"{where}: routes[{index}].weight: expected a non-negative integer")
        routes.append(Route(raw["version"], weight))
    if sum(r.weight for r in routes) <= 0:
        raise PromptError(f"{where}: routes: the weights add up to 0")
    sticky_key = document.get("stickyKey")
    if strategy == "sticky" and not isinstance(sticky_key, str):
        raise PromptError(f"{where}: stickyKey: required by the sticky strategy")
    token = document.get("evaluationToken")
    if token is not None and (not isinstance(token, str) or not token):
        raise PromptError(f"{where}: evaluationToken: expected a non-empty string")
    return Routing(strategy=strategy, routes=tuple(routes), sticky_key=sticky_key, evaluation_token=token)


def load_routing(path: Path) -> Routing:
    return parse_routing(_read_json(path), str(path))


@dataclass(frozen=True)
class Release:
    """The served versions and how requests are split between them."""

    versions: Mapping[str, PromptVersion]
    routing: Routing

    def __post_init__(self) -> None:
        unknown = [r.version for r in self.routing.routes if r.version not in self.versions]
        if unknown:
            raise PromptError(f"routing: routes name {', '.join(unknown)}, which are not mounted "
                              f"(mounted: {', '.join(self.versions)})")

    def pick(self, headers: Mapping[str, str], rng: random.Random | None = None) -> PromptVersion:
        return self.versions[self.routing.pick(headers, rng)]


def load_release(versions_dir: Path, routing_path: Path) -> Release:
    return Release(versions=load_versions(versions_dir), routing=load_routing(routing_path))


class MountedPrompts:
    """The release as mounted; re-read when any of its files changes, keeping the last good one on errors."""

    def __init__(self, versions_dir: str | Path, routing_path: str | Path):
        self.versions_dir = Path(versions_dir)
        self.routing_path = Path(routing_path)
        self.last_error: str | None = None
        self._stamp: tuple | None = None
        self._release: Release | None = None

    def _fingerprint(self) -> tuple:
        paths = [self.routing_path, *sorted(self.versions_dir.glob(f"*/{PROMPT_KEY}")),
                 *sorted(self.versions_dir.glob(f"*/{TEMPLATE_KEY}"))]
        stamps = []
        for path in paths:
            try:
                stat = path.stat()
                stamps.append((str(path), stat.st_mtime_ns, stat.st_size))
            except OSError:
                stamps.append((str(path), None, None))
        return tuple(stamps)

    def release(self) -> Release:
        """The release as it is on disk now; raises PromptError only when there never was a good one."""
        stamp = self._fingerprint()
        if stamp != self._stamp:
            try:
                self._release = load_release(self.versions_dir, self.routing_path)
                self.last_error = None
            except PromptError as err:
                self.last_error = str(err)
                if self._release is None:
                    raise
            self._stamp = stamp
        if self._release is None:
            raise PromptError(self.last_error or f"{self.versions_dir}: not loaded")
        return self._release
