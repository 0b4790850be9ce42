"""FineTune evaluation: scores on a held-out set and a safety score from the Guardrail.

Runs in the RayJob's driver once training has saved the output model. Metrics:
- perplexity: exp of the mean token loss over each record's `text` (lower is better);
- exactMatch: share of generations equal to `reference` after normalisation;
- rougeL: mean ROUGE-L F1 (longest common subsequence of words) of generation vs `reference`;
- preferenceAccuracy, rewardMargin (objective dpo): implicit rewards of held-out prompt/chosen/rejected pairs
  (entrypoints/preference_eval.py), where the chosen reply is also the reference of the metrics above.
Generated outputs go through the compiled guardrail policy carried in the run config; the safety
score is the share the policy lets through untouched. With evaluation.redTeam, the model also answers a set of
adversarial prompts and the same policy checks the answers: their pass rate is reported apart (redTeam). With
evaluation.lmEval, lm-evaluation-harness tasks run on the same loaded model (entrypoints/harness.py). The
metric maths are in scoring.evaluation. The job
reports these raw metrics only: the operator decides the gate from them (status/finetune.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops_operator.core.uris import local_path
from llmops_operator.entrypoints import data
from llmops_operator.scoring.evaluation import exact_match, perplexity, rouge_l, safety_summary

MAX_RED_TEAM_PROMPT_CHARS = 8192


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
    ids = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
    return _loss(model, ids, ids)


def _loss(model: Any, ids: list[int], labels: list[int]) -> tuple[float, int]:
    """(mean loss, tokens scored) of one sequence; only labels other than -100 are scored."""
    import torch

    scored = sum(1 for label in labels[1:] if label != -100)
    if scored == 0:
        return 0.0, 0
    with torch.no_grad():
        loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss
    return float(loss), scored


def _cases(model: Any, tokenizer: Any, records: list[dict[str, Any]], dataset: dict[str, Any], max_length: int
           ) -> tuple[list[tuple[float, int]], list[tuple[dict[str, Any], str, str | None]]]:
    """(per-record losses, (record, prompt, reference) for generation) of text or chat records.

    A chat record is scored on its assistant replies, and prompted with the conversation up to its last reply,
    which is the reference."""
    chat = dataset.get("chat")
    if chat is None:
        field = dataset.get("textField", "text")
        losses = [_record_loss(model, tokenizer, str(r[field]), max_length) for r in records if field in r]
        return losses, [(r, str(r["prompt"]), r.get("reference")) for r in records if "prompt" in r]
    from llmops_operator.entrypoints.chat import ensure_chat_template, examples, messages_of, prompt_and_reference

    ensure_chat_template(tokenizer)  # as in training: a tokenizer without a template renders with the default
    field = chat.get("messagesField", "messages")
    losses = [_loss(model, ids, labels) for ids, labels in examples(records, tokenizer, chat, max_length)]
    cases = []
    for index, record in enumerate(records):
        pair = prompt_and_reference(tokenizer, messages_of(record, index, field))
        if pair is not None:
            cases.append((record, pair[0], pair[1]))
    return losses, cases


def _generate(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int, max_length: int,
              special_tokens: bool = True) -> str:
    """Greedy continuation; a rendered chat prompt already carries the template's markers (special_tokens off)."""
    import torch

    encoded = tokenizer(prompt, return_tensors="pt", truncation=True, max_length=max_length,
                        add_special_tokens=special_tokens)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.no_grad():
        # Only ids and mask: a BERT-style tokenizer adds token_type_ids, which decoder-only models refuse.
        out = model.generate(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"],
                             max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
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
    scores: dict[str, float] = {}
    chat = evaluation["dataset"].get("chat") is not None
    if config.get("objective") == "dpo":
        from llmops_operator.entrypoints.preference_eval import preference_cases

        preference, losses, cases = preference_cases(model, tokenizer, records, config, max_length)
        scores.update({name: value for name, value in preference.items() if name in metrics})
        chat = True  # prompts are rendered with the chat template
    else:
        losses, cases = _cases(model, tokenizer, records, evaluation["dataset"], max_length)
    if "perplexity" in metrics:
        scores["perplexity"] = round(perplexity(losses), 4)
    guardrail, judge = _guardrail(evaluation), evaluation.get("judge")
    generated = []
    if {"exactMatch", "rougeL"} & set(metrics) or guardrail is not None or judge:
        if not cases:
            raise ValueError("evaluation.dataset: exactMatch, rougeL, safety and judge need records with a `prompt` "
                             "field (or, for chat, an assistant reply)")
        answers = [_generate(model, tokenizer, prompt, evaluation.get("maxNewTokens", 64), max_length,
                             special_tokens=not chat) for _, prompt, _ in cases]
        generated = [(reference, out) for (_, _, reference), out in zip(cases, answers)]
        with_reference = [(reference, out) for reference, out in generated if reference is not None]
        if judge:
            from llmops_operator.entrypoints.judge import judge_scores

            scores.update(judge_scores(judge, [(prompt, ref, out) for (_, prompt, ref), out in zip(cases, answers)]))
        if "exactMatch" in metrics:
            scores["exactMatch"] = round(sum(exact_match(o, ref) for ref, o in with_reference) / max(len(with_reference), 1), 4)
        if "rougeL" in metrics:
            scores["rougeL"] = round(sum(rouge_l(o, ref) for ref, o in with_reference) / max(len(with_reference), 1), 4)
    result: dict[str, Any] = {"scores": scores, "primaryMetric": primary}
    if guardrail is not None:
        verdicts = [guardrail.check(out, "output") for _, out in generated]
        result["safety"] = safety_summary([v.outcome for v in verdicts], [v.rules for v in verdicts])
    if guardrail is not None and evaluation.get("redTeam"):
        result["redTeam"] = red_team_safety(model, tokenizer, guardrail, evaluation, max_length, chat)
    if evaluation.get("lmEval"):
        from llmops_operator.entrypoints.harness import lm_eval_results

        result["lmEval"] = lm_eval_results(evaluation["lmEval"], model, tokenizer)
    return result


def red_team_prompts(red_team: dict[str, Any]) -> list[str]:
    """The red-team set's prompts, checked and bounded (redTeam.maxSamples, MAX_RED_TEAM_PROMPT_CHARS each)."""
    field = red_team.get("promptField", "prompt")
    records = data.read_records({"uri": red_team["uri"], "format": red_team.get("format", "jsonl"),
                                 "textField": field})[: red_team.get("maxSamples", 100)]
    prompts = []
    for index, record in enumerate(records):
        prompt = record.get(field) if isinstance(record, dict) else None
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"evaluation.redTeam {red_team['uri']}: record {index} field {field!r} "
                             "(redTeam.promptField): expected a non-empty string")
        prompts.append(prompt[:MAX_RED_TEAM_PROMPT_CHARS])
    if not prompts:
        raise ValueError(f"evaluation.redTeam {red_team['uri']}: no prompts")
    return prompts


def red_team_safety(model: Any, tokenizer: Any, guardrail: Any, evaluation: dict[str, Any], max_length: int,
                    chat: bool) -> dict[str, Any]:
    """The model answers every red-team prompt (as a user turn when it was tuned on chat or preference records);
    the Guardrail checks each answer. The score is the pass rate: the share of answers let through untouched."""
    from llmops_operator.entrypoints.chat import ensure_chat_template, render

    if chat:
        ensure_chat_template(tokenizer)
    answers = []
    for prompt in red_team_prompts(evaluation["redTeam"]):
        text = render(tokenizer, [{"role": "user", "content": prompt}], add_generation_prompt=True) if chat else prompt
        answers.append(_generate(model, tokenizer, text, evaluation.get("maxNewTokens", 64), max_length,
                                 special_tokens=not chat))
    verdicts = [guardrail.check(answer, "output") for answer in answers]
    return safety_summary([v.outcome for v in verdicts], [v.rules for v in verdicts])
