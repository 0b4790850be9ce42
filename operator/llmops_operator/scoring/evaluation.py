"""Evaluation maths (pure): text metrics, the safety summary of guarded generations, and the quality gate.

- perplexity: exp of the mean token loss (lower is better);
- exactMatch: share of generations equal to the reference after normalisation;
- rougeL: ROUGE-L F1 (longest common subsequence of words) of generation vs reference.
"""

from __future__ import annotations

import math
import re
from typing import Any, Sequence

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


def gate(scores: dict[str, float], primary: str, safety: float | None, gates: dict[str, Any] | None,
         red_team: float | None = None, more: Sequence[tuple[str, str | None]] = ()) -> tuple[str, str]:
    """(Passed | Failed, why). minScore is a ceiling for lower-is-better metrics such as perplexity;
    minRedTeamPassRate is a floor on the red-team answers' pass rate (`red_team`), minJudgeScore on scores["judge"].
    `more` holds further checked gates as (name, problem or None), such as lm_eval_checks'."""
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
    if gates.get("minJudgeScore") is not None and (scores.get("judge") is None or
                                                   scores["judge"] < gates["minJudgeScore"]):
        problems.append(f"judge score {scores.get('judge')} is below {gates['minJudgeScore']}")
    if gates.get("minRedTeamPassRate") is not None and (red_team is None or red_team < gates["minRedTeamPassRate"]):
        problems.append(f"red-team pass rate {red_team} is below {gates['minRedTeamPassRate']}")
    problems.extend(problem for _, problem in more if problem)
    if problems:
        return FAILED, "; ".join(problems)
    checked = [name for name, key in ((primary, "minScore"), ("safety", "minSafety"),
                                      ("judge score", "minJudgeScore"), ("red-team pass rate", "minRedTeamPassRate"))
               if gates.get(key) is not None] + [name for name, _ in more]
    return PASSED, ("passed " + " and ".join(checked)) if checked else "no gates set"


def lm_eval_checks(gates: Sequence[tuple[str, str, float | None, float | None]],
                   reported: dict[str, dict[str, Any]] | None) -> list[tuple[str, str | None]]:
    """(name, problem or None) of each lm-eval task gate (task, metric, min, max) against the reported results
    (task -> {scores, error}). A metric that was not measured fails its gate, quoting the task's error."""
    checks = []
    for task, metric, low, high in gates:
        name = f"lmEval {task} {metric}"
        result = (reported or {}).get(task) or {}
        value = (result.get("scores") or {}).get(metric)
        if value is None or math.isnan(value):
            why = result.get("error") or "the task reported no such metric"
            checks.append((name, f"{name} was not measured: {why[:300]}"))
        elif low is not None and value < low:
            checks.append((name, f"{name} {round(value, 4)} is below {low}"))
        elif high is not None and value > high:
            checks.append((name, f"{name} {round(value, 4)} is above {high}"))
        else:
            checks.append((name, None))
    return checks
