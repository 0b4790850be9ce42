"""LoRA adapters on the sandbox predictor's base model: loaded with peft, picked per request, reloaded at run time.

The adapters file (`{"adapters": [{"name": ..., "uri": ...}]}`: the operator's adapters ConfigMap as mounted, named
by LLMOPS_ADAPTERS_FILE) is read before the predictor reports ready and again whenever its content changes (polled
every POLL_SECONDS; the kubelet swaps a mounted ConfigMap in place), so an adapter added to spec.adapters, or a
FineTune's new output, reaches the running predictor without a restart and without reloading the base.

Loads, unloads and generations all run on the predictor's one worker thread: a request's adapter is made active
just before its generation and nothing else runs on the model until that generation ends, so requests for
different adapters are served one after another and never mixed. A request for the base model runs with every
adapter disabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

from llmops_operator.api.v1alpha1.serving_adapters import MAX_ADAPTERS
from llmops_operator.builders.adapters import ADAPTERS_FILE_ENV  # noqa: F401  (the predictor reads it)
from llmops_operator.core.uris import local_path

log = logging.getLogger("llmops.serving.adapters")

POLL_SECONDS = 1.0
MAX_FILE_BYTES = 64 * 1024


class AdaptersFileError(ValueError):
    """The adapters file cannot be read as a list of {name, uri}."""


def parse_adapters(text: str, base_name: str) -> dict[str, str]:
    """name -> URI from the adapters file's text; a malformed file is an AdaptersFileError naming what is wrong."""
    if len(text) > MAX_FILE_BYTES:
        raise AdaptersFileError(f"longer than {MAX_FILE_BYTES} bytes")
    try:
        entries = json.loads(text).get("adapters")
    except (ValueError, AttributeError) as err:
        raise AdaptersFileError(f"not a JSON object with an 'adapters' list: {err}") from None
    if not isinstance(entries, list) or len(entries) > MAX_ADAPTERS:
        raise AdaptersFileError(f"adapters: expected a list of at most {MAX_ADAPTERS} entries")
    wanted: dict[str, str] = {}
    for index, entry in enumerate(entries):
        name, uri = (entry.get("name"), entry.get("uri")) if isinstance(entry, dict) else (None, None)
        if not isinstance(name, str) or not name or not isinstance(uri, str) or not uri:
            raise AdaptersFileError(f"adapters[{index}]: expected {{name: string, uri: string}}")
        if name == base_name or name in wanted:
            raise AdaptersFileError(f"adapters[{index}].name {name!r}: used twice (the base model is {base_name!r})")
        wanted[name] = uri
    return wanted


class AdaptersFile:
    """The mounted adapters file and the content last applied; a missing file means no adapters."""

    def __init__(self, path: Path, base_name: str):
        self.path, self.base_name = path, base_name
        self.applied: str | None = None

    def text(self) -> str:
        try:
            with self.path.open("rb") as handle:
                return handle.read(MAX_FILE_BYTES + 1).decode("utf-8", errors="replace")
        except FileNotFoundError:
            return '{"adapters": []}'

    def changed(self) -> bool:
        try:
            return self.text() != self.applied
        except OSError:
            return False

    def apply(self, adapters: "AdapterSet") -> None:
        """Load and unload as the file now says (on the generating thread). A file that cannot be read keeps what
        is loaded: a broken file must not unload every adapter."""
        try:
            self.applied = self.text()
            wanted = parse_adapters(self.applied, self.base_name)
        except (OSError, AdaptersFileError) as err:
            log.error("adapters file %s: %s", self.path, err)
            return
        adapters.sync(wanted)

    async def watch(self, ready: Callable[[], bool], apply: Callable[[], Awaitable[None]]) -> None:
        """Every POLL_SECONDS, once the base model is loaded: `apply` when the file's content changed."""
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if ready() and self.changed():
                try:
                    await apply()
                except Exception:  # an adapter's failure must not end reloading for all the others
                    log.exception("applying adapters file %s failed; retrying at the next poll", self.path)
                    self.applied = None


def saved_chat_template(directory: Path) -> str | None:
    """The chat template a tokenizer saved in `directory` carries (chat_template.jinja, or in tokenizer_config)."""
    jinja = directory / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    try:
        config = json.loads((directory / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        return None
    template = config.get("chat_template") if isinstance(config, dict) else None
    return template if isinstance(template, str) else None


class AdapterSet:
    """The adapters loaded into one model. Every method runs on the generating thread."""

    def __init__(self) -> None:
        self.model: Any = None
        """The base model, or the peft model wrapping it once an adapter is loaded."""
        self.loaded: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.chat_templates: dict[str, str] = {}
        """The chat template an adapter was trained with (saved beside it), used for its chat requests."""

    @property
    def names(self) -> list[str]:
        return sorted(self.loaded)

    def sync(self, wanted: dict[str, str]) -> None:
        """Unload what is no longer wanted (or whose URI changed), then load what is missing."""
        for name in [n for n, uri in self.loaded.items() if wanted.get(n) != uri]:
            self._unload(name)
        self.errors = {n: e for n, e in self.errors.items() if n in wanted}
        for name, uri in wanted.items():
            if name not in self.loaded:
                self._load(name, uri)

    def _load(self, name: str, uri: str) -> None:
        import peft

        try:
            path = str(local_path(uri))
            if isinstance(self.model, peft.PeftModel):
                self.model.load_adapter(path, adapter_name=name)
            else:
                self.model = peft.PeftModel.from_pretrained(self.model, path, adapter_name=name)
            self.model.eval()
        except Exception as err:  # noqa: BLE001  the files are the tenant's: any failure leaves the others serving
            self.errors[name] = f"{type(err).__name__}: {err}"
            log.error("adapter %s (%s) not loaded: %s", name, uri, self.errors[name])
            return
        self.loaded[name] = uri
        self.errors.pop(name, None)
        template = saved_chat_template(Path(path))
        if template:
            self.chat_templates[name] = template
        log.info("adapter %s loaded from %s", name, uri)

    def _unload(self, name: str) -> None:
        del self.loaded[name]
        self.chat_templates.pop(name, None)
        if self.loaded:
            self.model.delete_adapter(name)
        else:  # peft cannot run with no adapter left: take the base back out
            self.model = self.model.unload()
        log.info("adapter %s unloaded", name)

    @contextlib.contextmanager
    def selected(self, adapter: str | None) -> Iterator[Any]:
        """The model to generate with: `adapter` active, or (None) the base with every adapter disabled."""
        if not self.loaded:
            yield self.model
        elif adapter is None:
            with self.model.disable_adapter():
                yield self.model
        else:
            self.model.set_adapter(adapter)
            yield self.model
