"""Guardrail: a typed policy of checks on the text going into and coming out of a model.

The operator compiles the policy into a content-hashed ConfigMap; the guardrail runtime (the
InferenceService transformer, and FineTune evaluation) loads it. Consumers mount the ConfigMap by
the name in status.policyConfigMap, so a policy change rolls them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

import re2
from pydantic import AfterValidator, Field, field_validator, model_validator

from llmops_operator.api.v1alpha1.common import (
    KindInfo, KubeModel, PrinterColumn, Resource, ResourceStatus, SafetyStatus, StatusModel, age_column, cel,
    list_map, ready_columns, require_unique_names, safety_column,
)

CheckType = Literal["piiRedaction", "promptInjection", "jailbreak", "toxicity", "topicDenylist", "maxTokens",
                    "regexDeny"]
PiiEntity = Literal["email", "phone", "creditCard", "ssn", "ipAddress", "iban", "person", "address", "apiKey",
                    "nationalId"]
PII_ENTITIES: tuple[str, ...] = PiiEntity.__args__
CLASSIFIER_TYPES = ("promptInjection", "jailbreak", "toxicity")
"""Check types that score text with a classifier and compare the score with a threshold."""
REDACTABLE_TYPES = ("piiRedaction", "regexDeny")
"""Check types that find spans, so their matches can be redacted rather than blocked."""
DEFAULT_THRESHOLD = 0.5
DIRECTIONS = ("input", "output", "retrieved")
"""input: the prompt; output: the completion; retrieved: each chunk a retrieval puts into the context."""
POLICY_FORMAT = "llmops.dev/guardrail-policy/v1"
"""The compiled policy's format: a GuardrailSpec with every default made explicit, plus this marker."""
MAX_PATTERN_CHARS = 1024
PATTERN_MEMORY_BYTES = 8 << 20
"""What one compiled tenant pattern may use; a pattern over it is refused rather than run slowly."""


def re2_options() -> "re2.Options":
    """RE2 options every guardrail pattern is compiled with (validation and the engine alike)."""
    options = re2.Options()
    options.max_mem = PATTERN_MEMORY_BYTES
    options.log_errors = False
    return options


def linear_pattern(pattern: str) -> str:
    """A pattern RE2 runs in time linear in the text; backreferences and lookaround are refused."""
    if not pattern:
        raise ValueError("a pattern must not be empty")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"pattern is longer than {MAX_PATTERN_CHARS} characters")
    if _SINGLE_BYTE.search(pattern):
        raise ValueError(f"{pattern!r} uses \\C (one byte), which can split a character; match characters")
    try:
        compiled = re2.compile(pattern, re2_options())
    except re2.error as err:
        reason = err.args[0].decode() if err.args and isinstance(err.args[0], bytes) else str(err)
        raise ValueError(f"{pattern!r} is not a linear-time (RE2) pattern: {reason}; backreferences and "
                         "lookaround are not supported") from None
    if compiled.search("") is not None:
        # An empty match hits nothing, yet where it matches it would hide the checks scanned after it.
        raise ValueError(f"{pattern!r} matches the empty text; a pattern must match at least one character")
    return pattern


_SINGLE_BYTE = re.compile(r"(?<!\\)(?:\\\\)*\\C")


LinearPattern = Annotated[str, AfterValidator(linear_pattern)]
_RESOLVED_DEFAULTS: dict[str, dict[str, Any]] = {
    "piiRedaction": {"entities": list(PII_ENTITIES)},
    **{type_: {"threshold": DEFAULT_THRESHOLD} for type_ in CLASSIFIER_TYPES},
}
"""Per check type, the defaults `resolved` writes into a check so the runtime needs none of the API's."""

# (rule, message, fieldPath) for each check; `_check_fits_type` enforces the same, in the same order.
_CHECK_RULES: list[tuple[str, str, str]] = [
    ("self.type != 'topicDenylist' || has(self.topics)", "a topicDenylist check needs topics", ".topics"),
    ("self.type != 'maxTokens' || has(self.maxTokens)", "a maxTokens check needs maxTokens", ".maxTokens"),
    ("self.type != 'regexDeny' || has(self.patterns)", "a regexDeny check needs patterns", ".patterns"),
    ("!has(self.entities) || self.type == 'piiRedaction'", "entities applies to piiRedaction checks only",
     ".entities"),
    ("!has(self.topics) || self.type == 'topicDenylist'", "topics applies to topicDenylist checks only", ".topics"),
    ("!has(self.maxTokens) || self.type == 'maxTokens'", "maxTokens applies to maxTokens checks only", ".maxTokens"),
    ("!has(self.patterns) || self.type == 'regexDeny'", "patterns applies to regexDeny checks only", ".patterns"),
    ("!has(self.threshold) || self.type in ['promptInjection', 'jailbreak', 'toxicity']",
     "threshold applies to promptInjection, jailbreak and toxicity checks only", ".threshold"),
    ("!has(self.action) || self.action != 'redact' || self.type in ['piiRedaction', 'regexDeny']",
     "action redact applies to piiRedaction and regexDeny checks only; use block or flag", ".action"),
    ("!has(self.action) || self.action != 'drop' || (has(self.scope) && self.scope == 'retrieved')",
     "action drop applies to checks with scope retrieved only", ".action"),
]


class GuardrailCheck(KubeModel):
    """One check: what it detects, where, and what happens on a hit."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [cel(*rule) for rule in _CHECK_RULES]}}

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    """Check name, unique in the policy; verdict counts in status.safety.byRule are keyed by it."""
    type: CheckType
    """What the check detects: piiRedaction (personal data), promptInjection, jailbreak, toxicity (classifier
    score above threshold), topicDenylist (banned topics), maxTokens (size limit) or regexDeny (patterns)."""
    action: Literal["block", "redact", "flag", "drop"] = "block"
    """block: refuse the request or response; redact: mask the matched spans (piiRedaction and regexDeny only);
    flag: let it through and count the verdict; drop (scope retrieved only): leave the chunk out of the context
    and answer from the others. Defaults to block."""
    scope: Literal["input", "output", "both", "retrieved"] = "both"
    """Which text the check reads: the prompt (input), the completion (output), both, or each chunk a retrieval
    found before it reaches the model (retrieved; there block refuses the whole request). Defaults to both."""
    entities: list[PiiEntity] | None = Field(default=None, min_length=1, max_length=len(PII_ENTITIES))
    """piiRedaction only: the kinds of personal data to detect (apiKey: secrets such as cloud and SaaS tokens,
    private keys, JWTs and high-entropy values assigned to secret names; nationalId: national identity numbers of
    twelve countries, each validated by its check rule). Defaults to every kind."""
    threshold: float | None = Field(default=None, ge=0, le=1)
    """promptInjection, jailbreak and toxicity only: classifier score (0..1) at or above which the check hits.
    Defaults to 0.5."""
    topics: list[str] | None = Field(default=None, min_length=1, max_length=64)
    """topicDenylist only: topics the model must not discuss, in plain words."""
    max_tokens: int | None = Field(default=None, ge=1, le=1_048_576)
    """maxTokens only: the most tokens the text may have."""
    patterns: list[LinearPattern] | None = Field(default=None, min_length=1, max_length=32)
    """regexDeny only: RE2 regular expressions (linear time: no backreferences, no lookaround); text matching
    any of them hits."""
    mode: Literal["enforce", "monitor"] | None = None
    """enforce: apply the action; monitor: only flag, to try this check on live traffic first. Defaults to
    spec.mode."""
    on_error: Literal["failClosed", "failOpen"] = "failClosed"
    """What happens when the check cannot run (text over the runtime's size limit, an internal error):
    failClosed treats the text as a hit of this check (its action applies), failOpen lets it pass unchecked and
    reports the error. Defaults to failClosed."""

    @field_validator("topics")
    @classmethod
    def _topics_short(cls, topics: list[str] | None) -> list[str] | None:
        for topic in topics or ():
            if not topic.strip() or len(topic) > 256:
                raise ValueError(f"topic {topic!r} must be 1 to 256 characters")
        return topics

    @model_validator(mode="after")
    def _check_fits_type(self) -> "GuardrailCheck":
        given = {"entities": self.entities, "topics": self.topics, "maxTokens": self.max_tokens,
                 "patterns": self.patterns, "threshold": self.threshold}
        needs = {"topicDenylist": "topics", "maxTokens": "maxTokens", "regexDeny": "patterns"}
        if self.type in needs and given[needs[self.type]] is None:
            raise ValueError(f"a {self.type} check needs {needs[self.type]}")
        owner = {"entities": ("piiRedaction",), "topics": ("topicDenylist",), "maxTokens": ("maxTokens",),
                 "patterns": ("regexDeny",)}
        for field, types in owner.items():
            if given[field] is not None and self.type not in types:
                raise ValueError(f"{field} applies to {types[0]} checks only")
        if self.threshold is not None and self.type not in CLASSIFIER_TYPES:
            raise ValueError("threshold applies to promptInjection, jailbreak and toxicity checks only")
        if self.action == "redact" and self.type not in REDACTABLE_TYPES:
            raise ValueError("action redact applies to piiRedaction and regexDeny checks only; use block or flag")
        if self.action == "drop" and self.scope != "retrieved":
            raise ValueError("action drop applies to checks with scope retrieved only")
        return self

    def applies_to(self, direction: str) -> bool:
        return self.scope in (direction, "both")

    def resolved(self, policy_mode: str) -> "GuardrailCheck":
        """The check with every default explicit (mode from the policy, entities, threshold): its compiled form."""
        update: dict[str, Any] = {"mode": self.mode or policy_mode}
        for field, default in _RESOLVED_DEFAULTS.get(self.type, {}).items():
            if getattr(self, field) is None:
                update[field] = default
        return self.model_copy(update=update)


def unique_check_names(checks: list[GuardrailCheck]) -> list[GuardrailCheck]:
    require_unique_names(checks, "check names must be unique: ")
    return checks


class DatasetConfigMapRef(KubeModel):
    """A key of a ConfigMap in the same namespace holding a dataset."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the ConfigMap."""
    key: str = Field(default="dataset.jsonl", min_length=1, max_length=253)
    """Key inside the ConfigMap's data. Defaults to dataset.jsonl."""


class GuardrailEvaluation(KubeModel):
    """A labeled dataset the operator runs against the compiled policy; Ready waits for it to pass."""

    dataset: DatasetConfigMapRef
    """JSON Lines of labeled texts: {"text": ..., "expected": "allow" | "block" | "redact" | "flag", "family": ...,
    "direction": "input" | "output"} (family, reported separately, defaults to "default"; direction to input).
    At most 10000 records."""
    min_pass_rate: float = Field(default=0.9, ge=0, le=1)
    """Share of records (0..1) whose verdict must match the label, overall and in every family, for the policy to
    be Ready. Defaults to 0.9."""


class GuardrailSpec(KubeModel):
    """The checks, how they are enforced, and how the policy is self-tested."""

    checks: list[GuardrailCheck] = Field(min_length=1, max_length=32, json_schema_extra=list_map("name"))
    """The checks, applied in order; names are unique."""
    mode: Literal["enforce", "monitor"] = "enforce"
    """enforce: apply each check's action; monitor: only flag, whatever the action, to try a policy on live traffic
    first. Defaults to enforce."""
    evaluation: GuardrailEvaluation | None = None
    """A labeled dataset the runtime scores the policy on; status.safety stays unscored until it has run."""
    verdict_detail: Literal["minimal", "full"] | None = None
    """What a client is told of a verdict. minimal (the default): the outcome per direction (allowed, flagged,
    redacted, blocked) and a request id; full: also the rules, entities, scores and spans that hit, for debugging
    (it tells an attacker which rule caught them). Logs and metrics always carry the rules."""

    _unique_names = field_validator("checks")(unique_check_names)


class CompiledEvaluation(KubeModel):
    """spec.evaluation as the compiled policy records it."""

    config_map: str
    key: str
    min_pass_rate: float = Field(ge=0, le=1)


class CompiledPolicy(KubeModel):
    """The policy the guardrail runtime loads (policy.json): the spec's checks with every default resolved.

    The runtime reads it back through this model, so a compiled policy obeys exactly the rules of the spec."""

    format: Literal["llmops.dev/guardrail-policy/v1"]
    mode: Literal["enforce", "monitor"] = "enforce"
    checks: list[GuardrailCheck] = Field(min_length=1, max_length=32)
    evaluation: CompiledEvaluation | None = None
    verdict_detail: Literal["minimal", "full"] | None = None

    _unique_names = field_validator("checks")(unique_check_names)

    @model_validator(mode="after")
    def _resolve_checks(self) -> "CompiledPolicy":
        # A document from an older compiler may leave defaults out; the engine never sees an unresolved check.
        self.checks = [check.resolved(self.mode) for check in self.checks]
        return self

    @classmethod
    def of(cls, spec: GuardrailSpec) -> "CompiledPolicy":
        evaluation = spec.evaluation and CompiledEvaluation(
            config_map=spec.evaluation.dataset.name, key=spec.evaluation.dataset.key,
            min_pass_rate=spec.evaluation.min_pass_rate)
        return cls(format=POLICY_FORMAT, mode=spec.mode, checks=spec.checks, evaluation=evaluation,
                   verdict_detail=spec.verdict_detail)


def rate(count: int, total: int) -> float | None:
    """count / total to four places; None when there is nothing to divide by."""
    return round(count / total, 4) if total else None


class DetectionRates:
    """The detection and false-positive rates of counts of attacks and benign cases, for any class with the
    fields attacks, detected, benign and false_positives: the self-test here, the corpus scores of the CLI."""

    @property
    def detection_rate(self) -> float | None:
        return rate(self.detected, self.attacks)

    @property
    def false_positive_rate(self) -> float | None:
        return rate(self.false_positives, self.benign)


class GuardrailSelfTest(DetectionRates, StatusModel):
    """The built-in self-test of one compiled policy; kept in status so a policy is never tested twice."""

    policy_hash: str
    """The policy the numbers are for; a policy with another hash is tested again."""
    attacks: int = Field(ge=0)
    """Built-in attacks the policy's checks cover (the detection rate's denominator)."""
    detected: int = Field(ge=0)
    benign: int = Field(ge=0)
    """Built-in benign look-alikes, each run in both directions."""
    false_positives: int = Field(ge=0)
    uncovered: list[str] = Field(default_factory=list)
    """Attack categories no check of the policy covers."""
    missed: list[str] = Field(default_factory=list, max_length=10)
    """The first words of up to ten missed attacks (built-in texts, so safe to show)."""


class FamilyResult(StatusModel):
    """The evaluation of one family of records."""

    family: str
    records: int = Field(ge=0)
    passed: int = Field(ge=0)


class GuardrailEvaluationResult(StatusModel):
    """spec.evaluation's dataset run against one compiled policy; kept so that pair is never run twice."""

    policy_hash: str
    dataset_hash: str
    """Hash of the dataset's text: an edited dataset is run again."""
    records: int = Field(ge=0)
    passed: int = Field(ge=0)
    families: list[FamilyResult] = Field(default_factory=list, max_length=32)
    """Per family, sorted by name (the first 32)."""

    @property
    def pass_rate(self) -> float | None:
        return rate(self.passed, self.records)


class GuardrailStatus(ResourceStatus):
    """Observed state of a Guardrail."""

    policy_config_map: str | None = None
    """Name of the ConfigMap holding the compiled policy (policy.json); consumers mount it by this name."""
    policy_hash: str | None = None
    """Hash of the compiled policy (the suffix of policyConfigMap)."""
    checks: int | None = None
    """Number of checks in the compiled policy."""
    safety: SafetyStatus | None = None
    """Self-test and live verdicts; score stays empty until the runtime has evaluated the policy."""
    self_test: GuardrailSelfTest | None = None
    """The built-in self-test of the policy named by its policyHash."""
    evaluation: GuardrailEvaluationResult | None = None
    """spec.evaluation's result; safety.score is its pass rate."""


class Guardrail(Resource):
    """Guardrail is a typed policy of input/output checks (PII, prompt injection, toxicity, topics, size, patterns), compiled into a content-hashed ConfigMap the guardrail runtime loads."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="Guardrail", plural="guardrails", short_names=["grail"],
        columns=[
            *ready_columns(),
            PrinterColumn(name="Mode", json_path=".spec.mode"),
            PrinterColumn(name="Checks", json_path=".status.checks", type="integer"),
            PrinterColumn(name="Policy", json_path=".status.policyConfigMap", priority=1),
            safety_column(),
            age_column(),
        ],
    )

    kind: Literal["Guardrail"] = "Guardrail"
    spec: GuardrailSpec
    status: GuardrailStatus | None = None
