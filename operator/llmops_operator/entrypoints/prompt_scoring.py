"""Scores a prompt candidate's evaluation outputs in a process of its own: JSON request on stdin, result on stdout.

The operator starts it for every evaluation (backends/prompt_evaluation.score_outputs) and kills it when it
runs past its time limit. The work is tenant-controlled: `regex` checks and the release's own Guardrail policy
run on the tenant's outputs, and a pattern that backtracks must cost this process, never the operator's event
loop.

Request: {version, stable, hash, metric, evaluatedAt, examples: [example], outputs: [{text, outcome, sources?,
context?}], baseline: [same], policy: compiled Guardrail policy or null}.
Answer: {evaluation: EvaluationResult, drift: PromptDrift} (wire form).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from llmops_operator.api.v1alpha1.promptrelease import EvaluationExample
from llmops_operator.guardrails.engine import Guardrail as GuardrailEngine
from llmops_operator.scoring.prompt_evaluation import Output, length_drift, summarise


def checked(policy: GuardrailEngine, output: Output) -> Output:
    """The output with the stricter of the service's outcome and the release's own Guardrail's."""
    if output.outcome == "blocked":
        return output
    verdict = policy.check(output.text, "output")
    outcome = verdict.outcome if verdict.outcome in ("blocked", "redacted") else output.outcome
    return Output(text=output.text, outcome=outcome, sources=output.sources, context=output.context)


def _outputs(records: list[dict[str, Any]]) -> list[Output]:
    return [Output.from_wire(r) for r in records]


def score(request: dict[str, Any]) -> dict[str, Any]:
    """The evaluation and output-length drift of one candidate (pure apart from the policy's engine)."""
    examples = [EvaluationExample.model_validate(e, by_alias=True, by_name=False) for e in request["examples"]]
    outputs, baseline = _outputs(request["outputs"]), _outputs(request["baseline"])
    if request.get("policy") is not None:
        engine = GuardrailEngine.from_document(request["policy"])
        outputs = [checked(engine, o) for o in outputs]
    result = summarise(request["version"], request["hash"], examples, outputs, request["metric"],
                       request["evaluatedAt"])
    drift = length_drift(request["version"], request["stable"], outputs, baseline)
    return {"evaluation": result.wire(), "drift": drift.wire()}


def main() -> int:
    json.dump(score(json.load(sys.stdin)), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
