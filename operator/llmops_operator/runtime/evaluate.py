"""FineTune evaluation: scores on a held-out set, a safety score from the Guardrail, and the gates.

Runs in the RayJob's driver once training has saved the output model. Metrics:
- perplexity: exp of the mean token loss over each record's `text` (lower is better);
- exactMatch: share of generations equal to `reference` after normalisation;
- rougeL: mean ROUGE-L F1 (longest common subsequence of words) of generation vs `reference`.
Generated outputs go through the compiled guardrail policy carried in the run config; the safety
score is the share the policy lets through untouched. The metric maths and the gate are pure.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Sequence

from llmops_operator.runtime import data
from llmops_operator.runtime.uris import local_path

LOWER_IS_BETTER = {"perplexity"}
PASSED, FAILED = "Passed", "Failed"


def normalise(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def exact_match(prediction: str, reference: str) -> float:
    return 1.0 if normalise(prediction) == normalise(reference) else 0.0


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 over lower-cased word tokens."""
    p, r = normalise(prediction), normalise(reference)
    if not p or not r:
        return 0.0
    common = _lcs(p, r)
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def perplexity(token_losses: Sequence[tuple[float, int]]) -> float:
    """exp(total loss / total tokens) from (mean loss, token count) per record."""
    tokens = sum(n for _, n in token_losses)
    if tokens == 0:
        return math.nan
    return math.exp(sum(loss * n for loss, n in token_losses) / tokens)


def safety_summary(outcomes: Sequence[str], rules: Sequence[Sequence[str]]) -> dict[str, Any]:
    """status.safety from the verdicts on generated outputs: score = share allowed untouched."""
    by_rule: dict[str, int] = {}
    for fired in rules:
        for rule in fired:
            by_rule[rule] = by_rule.get(rule, 0) + 1
    total = len(outcomes)
    return {"score": round(sum(o == "allowed" for o in outcomes) / total, 4) if total else None,
            "evaluated": total, "byRule": by_rule}


def gate(scores: dict[str, float], primary: str, safety: float | None, gates: dict[str, Any] | None
         ) -> tuple[str, str]:
    """(Passed | Failed, why). minScore is a ceiling for lower-is-better metrics such as perplexity."""
    gates = gates or {}
    problems = []
    threshold = gates.get("minScore")
    if threshold is not None:
        value = scores.get(primary)
        lower = primary in LOWER_IS_BETTER
        if value is None or math.isnan(value) or (value > threshold if lower else value < threshold):
            bound = "at most" if lower else "at least"
            problems.append(f"{primary} {value if value is None else round(value, 4)} is not {bound} {threshold}")
    if gates.get("minSafety") is not None and (safety is None or safety < gates["minSafety"]):
        problems.append(f"safety {safety} is below {gates['minSafety']}")
    if problems:
        return FAILED, "; ".join(problems)
    checked = [name for name, key in ((primary, "minScore"), ("safety", "minSafety")) if gates.get(key) is not None]
    return PASSED, ("passed " + " and ".join(checked)) if checked else "no gates set"


def _model(directory: Path) -> tuple[Any, Any]:
    """The saved output: a whole model, or an adapter on top of the base it names."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    if (directory / "adapter_config.json").exists():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(str(directory))
    else:
        model = AutoModelForCausalLM.from_pretrained(str(directory))
    model.eval()
    return tokenizer, model


def _record_loss(model: Any, tokenizer: Any, text: str, max_length: int) -> tuple[float, int]:
    import torch

    ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length)["input_ids"]
    if ids.shape[1] < 2:
        return 0.0, 0
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss
    return float(loss), ids.shape[1] - 1


def _generate(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int, max_length: int) -> str:
    import torch

    encoded = tokenizer(prompt, return_tensors="pt", truncation=True, max_length=max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.no_grad():
        out = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
    return tokenizer.decode(out[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def _guardrail(evaluation: dict[str, Any]) -> Any:
    policy = evaluation.get("guardrailPolicy")
    if not policy:
        return None
    from llmops_operator.guardrails.engine import Guardrail

    return Guardrail.from_document(policy)


def evaluate(config: dict[str, Any]) -> dict[str, Any]:
    """The evaluation block of status: scores, primary metric, safety, gate and gate message."""
    evaluation = config["evaluation"]
    metrics = evaluation.get("metrics") or ["perplexity"]
    primary = evaluation.get("primaryMetric") or metrics[0]
    records = data.read_records(evaluation["dataset"])[: evaluation.get("maxSamples", 200)]
    if not records:
        raise ValueError(f"evaluation.dataset {evaluation['dataset']['uri']}: no records")
    tokenizer, model = _model(local_path(config["output"]["uri"]))
    max_length = (config.get("training") or {}).get("seqLength", 512)
    text_field = evaluation["dataset"].get("textField", "text")
    scores: dict[str, float] = {}
    if "perplexity" in metrics:
        losses = [_record_loss(model, tokenizer, str(r[text_field]), max_length) for r in records if text_field in r]
        scores["perplexity"] = round(perplexity(losses), 4)
    guardrail = _guardrail(evaluation)
    generated = []
    if {"exactMatch", "rougeL"} & set(metrics) or guardrail is not None:
        prompted = [r for r in records if "prompt" in r]
        if not prompted:
            raise ValueError("evaluation.dataset: exactMatch, rougeL and safety need records with a `prompt` field")
        generated = [(r, _generate(model, tokenizer, str(r["prompt"]), evaluation.get("maxNewTokens", 64),
                                   max_length)) for r in prompted]
        with_reference = [(r["reference"], out) for r, out in generated if "reference" in r]
        if "exactMatch" in metrics:
            scores["exactMatch"] = round(sum(exact_match(o, ref) for ref, o in with_reference) / max(len(with_reference), 1), 4)
        if "rougeL" in metrics:
            scores["rougeL"] = round(sum(rouge_l(o, ref) for ref, o in with_reference) / max(len(with_reference), 1), 4)
    result: dict[str, Any] = {"scores": scores, "primaryMetric": primary}
    safety_score = None
    if guardrail is not None:
        verdicts = [guardrail.check(out, "output") for _, out in generated]
        result["safety"] = safety_summary([v.outcome for v in verdicts], [v.rules for v in verdicts])
        safety_score = result["safety"]["score"]
    result["gate"], result["gateMessage"] = gate(scores, primary, safety_score, config.get("gates"))
    return result
