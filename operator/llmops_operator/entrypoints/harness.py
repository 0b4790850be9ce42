"""lm-evaluation-harness tasks on the output model, run by the job's driver after training.

The model already loaded for evaluation is wrapped in lm-eval's HFLM (an adapter stays on its base as a peft
model), so nothing is loaded or fetched again. A local task's records are read through the runtime's own readers
(file://, pvc://, fsspec), checked, and written as a JSON Lines file of `input`, `choices` and `target` columns that
an lm-eval task config (`dataset_path: json`) reads: no hub, no templates evaluated from the spec. A stock task is
loaded by name from lm-eval's registry and needs its dataset reachable from the job.

Each task runs on its own, so one that fails (an unreachable dataset, a malformed record) reports its error and
the others still run. All tasks share lmEval.timeoutSeconds: every forward pass checks the deadline, and a task
still running at the deadline (stuck in a dataset download, say) is abandoned in its daemon thread; it and the
tasks not started report the timeout as their error. The job reports scores only; the operator gates on them.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

from llmops_operator.api.v1alpha1.lm_eval import METRICS_OF
from llmops_operator.entrypoints import data

MAX_ERROR_CHARS = 1000
MAX_SCORES = 32
MAX_CHOICES = 64
BOOTSTRAP_ITERS = 100
"""Bootstrap resamples for the stderr of metrics that need them (acc and exact_match have closed forms)."""
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.-]+)\}")
AGGREGATION = {"acc": ("mean", True), "acc_norm": ("mean", True), "exact_match": ("mean", True),
               "perplexity": ("perplexity", False)}
"""metric -> (lm-eval aggregation, higher is better)."""


class Expired(TimeoutError):
    """lmEval.timeoutSeconds ran out."""


def _render(template: str, record: Any, index: int, where: str) -> str:
    def field(match: re.Match) -> str:
        name = match.group(1)
        if name not in record:
            raise ValueError(f"{where}: record {index} has no field {name!r} (named in prompt)")
        return str(record[name])

    return PLACEHOLDER.sub(field, template)


def _choices_and_target(local: dict[str, Any], record: dict[str, Any], index: int, where: str) -> tuple[list, int]:
    field, target_field = local["choicesField"], local.get("targetField", "answer")
    choices = record.get(field)
    if not isinstance(choices, list) or not 1 < len(choices) <= MAX_CHOICES or \
            not all(isinstance(c, str) and c for c in choices):
        raise ValueError(f"{where}: record {index} field {field!r} (choicesField): expected a list of 2 to "
                         f"{MAX_CHOICES} non-empty strings")
    target = record.get(target_field)
    if isinstance(target, str) and target in choices:
        return choices, choices.index(target)
    if isinstance(target, int) and not isinstance(target, bool) and 0 <= target < len(choices):
        return choices, target
    raise ValueError(f"{where}: record {index} field {target_field!r} (targetField): expected the index of the "
                     "right choice or its text")


def local_rows(local: dict[str, Any], limit: int, where: str) -> list[dict[str, Any]]:
    """The task's first `limit` records as {input, target[, choices]} rows, each checked."""
    records = data.read_records({"uri": local["uri"], "format": local.get("format", "jsonl")})[:limit]
    if not records:
        raise ValueError(f"{where}: no records in {local['uri']}")
    rows = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValueError(f"{where}: record {index} is not an object")
        row: dict[str, Any] = {"input": _render(local["prompt"], record, index, where)}
        if local.get("outputType", "multiple_choice") == "multiple_choice":
            row["choices"], row["target"] = _choices_and_target(local, record, index, where)
        else:
            target_field = local.get("targetField", "answer")
            target = record.get(target_field)
            if not isinstance(target, (str, int, float)) or isinstance(target, bool) or str(target) == "":
                raise ValueError(f"{where}: record {index} field {target_field!r} (targetField): expected text")
            row["target"] = str(target)
        rows.append(row)
    return rows


def local_task_config(name: str, local: dict[str, Any], data_file: str, cache_dir: str,
                      num_fewshot: int) -> dict[str, Any]:
    """The lm-eval task config of a local task whose rows are in `data_file` (pure)."""
    output_type = local.get("outputType", "multiple_choice")
    metrics = local.get("metrics") or list(METRICS_OF[output_type])
    config: dict[str, Any] = {
        "task": name, "dataset_path": "json", "test_split": "test",
        "dataset_kwargs": {"data_files": {"test": data_file}, "cache_dir": cache_dir},
        "output_type": output_type, "doc_to_text": "input", "doc_to_target": "target",
        "metric_list": [{"metric": m, "aggregation": AGGREGATION[m][0], "higher_is_better": AGGREGATION[m][1]}
                        for m in metrics],
    }
    if output_type == "multiple_choice":
        config["doc_to_choice"] = "choices"
    if output_type == "generate_until":
        config["generation_kwargs"] = {"until": local.get("until") or ["\n"], "do_sample": False,
                                       "max_gen_toks": local.get("maxGenTokens", 32)}
    if num_fewshot:
        config["fewshot_split"] = "test"  # lm-eval never shows a question as its own example
    return config


def task_scores(entry: dict[str, Any]) -> dict[str, float]:
    """lm-eval's `metric,filter` results as status scores: `metric` for filter none, else `metric/filter`."""
    scores: dict[str, float] = {}
    for key, value in entry.items():
        if "," not in key or not isinstance(value, (int, float)) or isinstance(value, bool) or \
                not math.isfinite(value):
            continue
        metric, _, filter_name = key.partition(",")
        scores[metric if filter_name == "none" else f"{metric}/{filter_name}"] = float(f"{value:.6g}")
        if len(scores) == MAX_SCORES:
            break
    return scores


def _bounded(call: Callable[[], Any], seconds: float) -> Any:
    """call() in a daemon thread, abandoned after `seconds` (the thread's next forward pass raises Expired)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as err:  # handed to the caller below
            box["error"] = err

    thread = threading.Thread(target=run, name="lm-eval", daemon=True)
    thread.start()
    thread.join(max(seconds, 0))
    if thread.is_alive():
        raise Expired("still running")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _end_token(tokenizer: Any) -> int:
    """The token that ends a text: eos, or a BERT-style tokenizer's [SEP] (the builtin tokenizer has no eos)."""
    for token in (tokenizer.eos_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id):
        if token is not None:
            return token
    return 0


def harness_model(model: Any, tokenizer: Any, batch_size: int, deadline: float) -> Any:
    """lm-eval's HFLM around the loaded model; every forward pass and generation checks the deadline."""
    from lm_eval.models.huggingface import HFLM

    def check() -> None:
        if time.monotonic() > deadline:
            raise Expired("deadline passed")

    class DeadlineHFLM(HFLM):
        @property
        def eot_token_id(self) -> int:
            return _end_token(self.tokenizer)

        def _model_call(self, *args: Any, **kwargs: Any) -> Any:
            check()
            return super()._model_call(*args, **kwargs)

        def _model_generate(self, *args: Any, **kwargs: Any) -> Any:
            check()
            return super()._model_generate(*args, **kwargs)

    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else _end_token(tokenizer)
    return DeadlineHFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, prefix_token_id=prefix)


def _run_task(lm: Any, task: dict[str, Any], spec: dict[str, Any], workdir: Path, manager: Any) -> dict[str, Any]:
    import lm_eval

    name, local = task["name"], task.get("local")
    fewshot = task.get("numFewshot")
    target: Any = name
    if local is not None:
        rows = local_rows(local, spec.get("limit", 100), f"evaluation.lmEval task {name!r}")
        data_file = workdir / f"{name}.jsonl"  # names are unique and path-safe (the spec's pattern)
        data_file.write_text("".join(json.dumps(row) + "\n" for row in rows))
        target = local_task_config(name, local, str(data_file), str(workdir / "cache"), fewshot or 0)
        fewshot = fewshot or 0
    results = lm_eval.simple_evaluate(model=lm, tasks=[target], num_fewshot=fewshot, limit=spec.get("limit", 100),
                                      bootstrap_iters=BOOTSTRAP_ITERS, log_samples=False, task_manager=manager)
    entry = (results or {}).get("results", {}).get(name)
    if not entry:
        raise ValueError(f"lm-eval returned no results for {name!r}")
    samples = ((results.get("n-samples") or {}).get(name) or {}).get("effective")
    return {"scores": task_scores(entry), **({"samples": int(samples)} if samples is not None else {})}


def _setup(spec: dict[str, Any], model: Any, tokenizer: Any, deadline: float) -> tuple[Any, Any]:
    """(the wrapped model, lm-eval's task manager: with its registry only when a stock task is asked for)."""
    try:
        from lm_eval.tasks import TaskManager
    except ImportError as err:
        raise RuntimeError(f"the runtime image has no lm-eval (install llmops-operator[train]): {err}") from err
    needs_registry = any(task.get("local") is None for task in spec["tasks"])
    return harness_model(model, tokenizer, spec.get("batchSize", 8), deadline), \
        TaskManager(include_defaults=needs_registry)


def _error(err: Exception) -> str:
    return f"{type(err).__name__}: {err}"[:MAX_ERROR_CHARS]


def lm_eval_results(spec: dict[str, Any], model: Any, tokenizer: Any) -> dict[str, dict[str, Any]]:
    """status.evaluation.lmEval: per task, its scores and samples, or the error that left it without."""
    timeout = spec.get("timeoutSeconds", 1800)
    deadline = time.monotonic() + timeout
    try:
        lm, manager = _setup(spec, model, tokenizer, deadline)
    except Exception as err:  # lm-eval cannot run at all: every task says why, the evaluation goes on
        return {task["name"]: {"error": _error(err)} for task in spec["tasks"]}
    results: dict[str, dict[str, Any]] = {}
    # An abandoned task's thread may still be writing here when the directory goes: removal is best effort.
    with tempfile.TemporaryDirectory(prefix="lm-eval-", ignore_cleanup_errors=True) as workdir:
        for task in spec["tasks"]:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise Expired("not started")
                results[task["name"]] = _bounded(partial(_run_task, lm, task, spec, Path(workdir), manager), left)
            except Expired as err:
                results[task["name"]] = {"error": f"lmEval.timeoutSeconds ({timeout} s) ran out: {err}"}
            except Exception as err:  # one task's failure is its status, not the run's
                results[task["name"]] = {"error": _error(err)}
    return results
