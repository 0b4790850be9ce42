"""Our PII rule pass against Presidio's analyzer on the same cases: detection, false positives and latency.

Run on demand, in an environment that has presidio-analyzer (it is not a dependency of the project):

    python -m venv /tmp/presidio && /tmp/presidio/bin/pip install presidio-analyzer google-re2 pydantic \
        pydantic-settings pyyaml phonenumbers
    PYTHONPATH=operator /tmp/presidio/bin/python tests/benchmarks/presidio_compare.py [--split heldout] [--reps 5]

Presidio's NER needs a spaCy model, and the official spaCy models are not published on PyPI (only unofficial
re-uploads are), so Presidio runs here with a blank spaCy pipeline (tokenizer only): its pattern, checksum and
context recognizers all work, its PERSON/LOCATION NER does not, and neither engine is asked for those. To be fair,
Presidio gets every predefined recognizer for the identifiers our rules cover (registered for the text's
language being ignored: all under "en"), and its phone recognizer gets our list of regions.

Both sides answer the same question per case: did any of email, phone, card, SSN, national ID or IBAN fire?
Cases are the corpus's PII families (`pii-*`); secrets are left out (Presidio has no secret recognizers).
Latency is per case on one core, over `--reps` passes, plus 1 KB and 16 KB texts of prose with a few PII items.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "operator"))

from llmops_operator.guardrails.corpus import load_corpus  # noqa: E402
from llmops_operator.guardrails.engine import Guardrail  # noqa: E402
from llmops_operator.guardrails.numbers import PHONE_REGIONS  # noqa: E402

ENTITIES = ["email", "phone", "creditCard", "ssn", "iban", "nationalId"]
PRESIDIO_ENTITIES = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "ES_NIF", "ES_NIE",
                     "IN_AADHAAR", "IT_FISCAL_CODE", "DE_TAX_ID", "PL_PESEL", "SE_PERSONNUMMER", "UK_NINO", "CA_SIN"]
PROSE = ("The quarterly report shows that revenue grew in most regions, while costs stayed flat. Our team "
         "reviewed the pipeline, fixed two flaky tests and shipped version 2.4.1 to production on Tuesday. ")
EXTRAS = ["Contact jane.doe@example.com for details. ", "Call +44 20 7946 0958 after 5pm. ",
          "Order number 1234567890123456 is delayed. "]


def presidio_analyzer():
    import spacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer import predefined_recognizers as pr
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    class BlankSpacy(SpacyNlpEngine):
        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}

    engine = BlankSpacy(models=[{"lang_code": "en", "model_name": "blank"}])
    engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    recognizers = [pr.EmailRecognizer(), pr.CreditCardRecognizer(), pr.UsSsnRecognizer(), pr.IbanRecognizer(),
                   pr.PhoneRecognizer(supported_regions=PHONE_REGIONS)]
    for name in ("EsNifRecognizer", "EsNieRecognizer", "InAadhaarRecognizer", "ItFiscalCodeRecognizer",
                 "DeTaxIdRecognizer", "PlPeselRecognizer", "SePersonnummerRecognizer", "UkNinoRecognizer",
                 "CaSinRecognizer"):
        recognizers.append(getattr(pr, name)(supported_language="en"))
    for recognizer in recognizers:
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])


def ours() -> Guardrail:
    return Guardrail.from_document({"format": "llmops.dev/guardrail-policy/v1", "checks": [
        {"name": "pii", "type": "piiRedaction", "action": "redact", "entities": ENTITIES}]})


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def quality(flags: list[tuple[bool, bool]]) -> str:
    attacks = [flag for attack, flag in flags if attack]
    benign = [flag for attack, flag in flags if not attack]
    return (f"{sum(attacks) / len(attacks):.3f} ({sum(attacks)}/{len(attacks)}) | "
            f"{sum(benign) / len(benign):.3f} ({sum(benign)}/{len(benign)})")


def timed(fn, texts: list[str], reps: int) -> list[float]:
    """Microseconds per call, after one untimed pass (lazy imports, phone metadata of each region)."""
    for text in texts:
        fn(text)
    samples = []
    for _ in range(reps):
        for text in texts:
            started = time.perf_counter()
            fn(text)
            samples.append((time.perf_counter() - started) * 1e6)
    return samples


def sized_text(size: int) -> str:
    pieces, i = [], 0
    while sum(map(len, pieces)) < size:
        pieces.append(PROSE if i % 2 else EXTRAS[(i // 2) % len(EXTRAS)])
        i += 1
    return "".join(pieces)[:size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="heldout", choices=["train", "validation", "heldout", "all"])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    cases = [c for c in load_corpus(split=None if args.split == "all" else args.split) if c.family.startswith("pii-")]
    guardrail, analyzer = ours(), presidio_analyzer()

    def ours_flags(text: str) -> bool:
        return guardrail.check(text, "input").outcome != "allowed"

    def presidio_flags(text: str) -> bool:
        return bool(analyzer.analyze(text, language="en", entities=PRESIDIO_ENTITIES))

    texts = [case.text for case in cases]
    print(f"{len(cases)} cases ({args.split} split, PII families)\n")
    print("| engine | detection | false positives | p50 µs/case | p99 µs/case | p50 1 KB | p99 1 KB | p50 16 KB |"
          " p99 16 KB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, fn in (("llmops rules (RE2 + validators)", ours_flags), ("Presidio analyzer (blank spaCy)",
                                                                       presidio_flags)):
        flags = [(case.attack, fn(case.text)) for case in cases]
        p50, p99 = percentiles(timed(fn, texts, args.reps))
        sized = [percentiles(timed(fn, [sized_text(size)], max(20, args.reps * 10))) for size in (1_000, 16_000)]
        print(f"| {name} | {quality(flags)} | {p50:.0f} | {p99:.0f} | {sized[0][0]:.0f} | {sized[0][1]:.0f} | "
              f"{sized[1][0]:.0f} | {sized[1][1]:.0f} |")
    by_family: dict[str, list] = {}
    for case in cases:
        by_family.setdefault(case.family, []).append(case)
    print("\n| family | llmops detection | llmops false positives | Presidio detection | Presidio false positives |")
    print("|---|---|---|---|---|")
    for family, members in sorted(by_family.items()):
        row = [quality([(c.attack, fn(c.text)) for c in members]) for fn in (ours_flags, presidio_flags)]
        print(f"| {family} | {row[0]} | {row[1]} |")


if __name__ == "__main__":
    main()
