"""The shipped evaluation corpus: it loads strictly, it is balanced as documented, and the example policy passes
its held-out split; `llmops guardrail test --corpus` reports and gates on it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from llmops_operator.cli.guardrail_test import load_guardrail
from llmops_operator.cli.main import main
from llmops_operator.guardrails.corpus import CORPUS_DIR, CorpusError, load_corpus, parse_lines
from llmops_operator.guardrails.corpus_score import gate, score
from llmops_operator.guardrails.verdict import ALLOWED

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "manifests/examples/guardrail.yaml"
PII_FAMILIES = {"pii-email", "pii-phone", "pii-card", "pii-ssn", "pii-national-id", "pii-iban", "secrets"}
GOOD = {"id": "x-1", "text": "hello", "label": "benign", "family": "f", "language": "en", "direction": "input",
        "split": "train", "source": "s"}


def test_every_corpus_file_loads_and_ids_are_unique():
    cases = load_corpus()
    assert len({case.id for case in cases}) == len(cases)
    assert {path.name for path in CORPUS_DIR.glob("*.jsonl")} >= {"pii.jsonl", "secrets.jsonl"}


def test_the_pii_and_secrets_part_is_large_balanced_and_split():
    cases = [case for case in load_corpus() if case.family in PII_FAMILIES]
    assert len(cases) >= 200
    assert sum(not case.attack for case in cases) / len(cases) >= 0.4
    assert len({case.language for case in cases}) >= 10
    for family in PII_FAMILIES:
        splits = Counter((case.split, case.label) for case in cases if case.family == family)
        assert splits[("heldout", "attack")] and splits[("heldout", "benign")], family


@pytest.mark.parametrize("change, message", [
    ({"label": "evil"}, "pii.jsonl:1: label: expected one of attack, benign, got 'evil'"),
    ({"language": "english"}, "pii.jsonl:1: language: expected an ISO 639-1 code"),
    ({"split": "test"}, "pii.jsonl:1: split: expected one of train, validation, heldout"),
    ({"direction": "sideways"}, "pii.jsonl:1: direction: expected one of input, output, retrieved"),
    ({"text": ""}, "pii.jsonl:1: text: expected a non-empty string"),
    ({"colour": "red"}, "pii.jsonl:1: colour: unknown field"),
])
def test_a_malformed_line_is_named_by_file_line_and_field(change, message):
    with pytest.raises(CorpusError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_lines([json.dumps({**GOOD, **change})], "pii.jsonl")


def test_a_duplicate_id_across_files_is_refused(tmp_path):
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / name).write_text(json.dumps(GOOD) + "\n")
    with pytest.raises(CorpusError, match="b.jsonl: id 'x-1' is also in a.jsonl"):
        load_corpus(tmp_path)


def heldout_scores(families: set[str] | None = None):
    guardrail = load_guardrail(EXAMPLE)
    heldout = [case for case in load_corpus(split="heldout") if families is None or case.family in families]
    return score((case, guardrail.check(case.text, case.scan_direction).outcome != ALLOWED) for case in heldout)


def test_the_example_policy_passes_the_heldout_split_of_the_whole_corpus():
    # Every family of every corpus file, together: the held-out split was written after the rules were tuned
    # and never used to tune them, so its small families are noisy; the gate is on the whole.
    scores = heldout_scores()
    assert set(scores.families) >= PII_FAMILIES
    assert gate(scores, min_detection=0.9, max_false_positives=0.05, per_family=False) == []


def test_the_example_policy_passes_the_heldout_split_of_personal_data_and_secrets():
    assert gate(heldout_scores(PII_FAMILIES), min_detection=0.9, max_false_positives=0.05, per_family=False) == []


def test_cli_reports_rates_per_family_and_language_on_a_split(capsys):
    assert main(["guardrail", "test", "-f", str(EXAMPLE), "--corpus", "--split", "heldout", "--overall-only",
                 "--min-detection", "0.9", "--max-false-positives", "0.05"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    families = {line["family"] for line in lines if "family" in line}
    languages = {line["language"] for line in lines if "language" in line}
    assert families >= PII_FAMILIES and {"en", "fr", "de", "zh"} <= languages
    assert lines[-1]["summary"] and lines[-1]["attacks"] == sum(
        case.attack for case in load_corpus(split="heldout"))


def test_cli_exits_1_and_names_the_family_below_the_threshold(tmp_path, capsys):
    policy = tmp_path / "guardrail.yaml"
    policy.write_text(EXAMPLE.read_text().replace("entities: [apiKey]", "entities: [ipAddress]"))
    assert main(["guardrail", "test", "-f", str(policy), "--corpus", "--min-detection", "0.9"]) == 1
    assert "family secrets: detection rate" in capsys.readouterr().err


def test_cli_scores_a_users_file_of_one_split(tmp_path, capsys):
    cases = tmp_path / "mine.jsonl"
    cases.write_text("\n".join(json.dumps(c) for c in [
        {"text": "Mon numéro : +33 6 45 27 81 90", "label": "attack", "family": "phone", "language": "fr",
         "split": "heldout"},
        {"text": "Le colis pèse 12,5 kg", "label": "benign", "family": "phone", "language": "fr",
         "split": "heldout"},
        {"text": "call +1 415 555 2671", "label": "attack", "family": "phone", "language": "en", "split": "train"},
    ]) + "\n")
    assert main(["guardrail", "test", "-f", str(EXAMPLE), "--input", str(cases), "--split", "heldout",
                 "--max-false-positives", "0"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"language": "fr", "attacks": 1, "detected": 1, "benign": 1, "falsePositives": 0,
            "detectionRate": 1.0, "falsePositiveRate": 0.0} in lines
    assert lines[-1]["attacks"] == 1


def test_cli_refuses_a_threshold_outside_0_to_1(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["guardrail", "test", "-f", str(EXAMPLE), "--corpus", "--min-detection", "90"])
    assert exited.value.code == 2
    assert "--min-detection: expected a number from 0 to 1, got '90'" in capsys.readouterr().err
