"""FineTune evaluation: scores on a held-out set and a safety score from the Guardrail.

Runs in the RayJob's driver once training has saved the output model. Metrics:
- perplexity: exp of the mean token loss over each record's `text` (lower is better);
- exactMatch: share of generations equal to `reference` after normalisation;
- rougeL: mean ROUGE-L F1 (longest common subsequence of words) of generation vs `reference`.
Generated outputs go through the compiled guardrail policy carried in the run config; the safety
score is the share the policy lets through untouched. The metric maths are in scoring.evaluation. The job
reports these raw metrics only: the operator decides the gate from them (status/finetune.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops_operator.core.uris import local_path
from llmops_operator.entrypoints import data
from llmops_operator.scoring.evaluation import exact_match, perplexity, rouge_l, safety_summary


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
    """The metrics the job reports: scores, the primary metric and, with a Guardrail, safety."""
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
    if guardrail is not None:
        verdicts = [guardrail.check(out, "output") for _, out in generated]
        result["safety"] = safety_summary([v.outcome for v in verdicts], [v.rules for v in verdicts])
    return result
