"""Secrets (the apiKey entity): vendor tokens by their documented prefixes, private keys, JWTs, AWS secret keys
and high-entropy values assigned to secret-sounding names.

Look-alikes are rejected by validation rather than by hoping the pattern is narrow: a token whose random part is
a run of `x` or `0` is a documentation placeholder (its entropy is near zero), a JWT must have a JSON header
with an `alg`, and an assigned value must not be a reference to where the secret lives (`os.environ[...]`,
`${VAR}`, `<your-key>`) and must carry at least MIN_ENTROPY bits per character.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter

from llmops_operator.guardrails.normalize import normalize
from llmops_operator.guardrails.signals import PII, Signal, char_in, not_between

MIN_ENTROPY = 2.5
"""Bits per character (Shannon, over the value's own characters) an assigned value needs to count as a secret:
`hunter2hunter2hunter2` has 2.8, `xxxxxxxxxxxx` has 0, a 20-character random token about 4.2."""
MIN_TOKEN_ENTROPY = 3.0
"""For the random part of a vendor token: placeholders such as `ghp_XXXX…` or `sk-000…` score far below."""
_REFERENCES = ("environ", "getenv", "env.", "env[", "config", "settings", "secrets.", "vault", "{{", "${", "%(",
               "<", "example.", "placeholder", "changeme", "change_me", "your", "xxxx", "****", "redacted", "dummy",
               "sample", "replace", "insert", "none", "null", "undefined", "todo", "process.", "args.", "input(",
               "self.", "os.", "://")
_PATH_STARTS = ("/", "./", "../", "~")


def entropy(text: str) -> float:
    if not text:
        return 0.0
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in Counter(text).values())


def _token_part(text: str) -> str:
    """The random part of a token: what follows its last prefix separator."""
    return re.split(r"[_-]", text, maxsplit=2)[-1] if len(text) > 24 else text


def random_token(text: str) -> tuple[int, int] | None:
    """A vendor token whose random part looks random (not a placeholder)."""
    return (0, len(text)) if entropy(_token_part(text)) >= MIN_TOKEN_ENTROPY else None


def _b64url_json(part: str) -> object:
    padded = part + "=" * (-len(part) % 4)
    try:
        return json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError):
        return None


def jwt_span(text: str) -> tuple[int, int] | None:
    """A JSON Web Token: its first part decodes to a JSON header naming an `alg`."""
    header = _b64url_json(text.split(".", 1)[0])
    return (0, len(text)) if isinstance(header, dict) and "alg" in header else None


def char_classes(text: str) -> int:
    """How many of lower case, upper case, digits and other characters the text uses."""
    return (any(c.islower() for c in text) + any(c.isupper() for c in text) + any(c.isdigit() for c in text)
            + any(not c.isalnum() for c in text))


def secret_value(value: str, prose: bool) -> bool:
    """Whether an assigned value is a secret rather than a reference, a placeholder or a word: at least 8
    characters, MIN_ENTROPY bits per character and two kinds of character (three after a prose connector such
    as "is", where "password is required" must not count)."""
    lowered = value.lower()
    if len(value) < 8 or lowered.startswith(_PATH_STARTS) or any(ref in lowered for ref in _REFERENCES):
        return False
    if _CALL.match(value):
        return False
    return entropy(value) >= MIN_ENTROPY and char_classes(value) >= (3 if prose else 2)


_CALL = re.compile(r"[A-Za-z_][\w.]*\(")
"""`getpass.getpass()`, `request.headers.get(...)`: code that fetches a secret, not a secret."""
_CONNECTOR = re.compile(r"(?s).*?(?:[:=：]|\s(?:is|was|est|es|ist|era|war|é|è)\b:?|是|为|は)\s*['\"]?")


def assigned_value(text: str) -> tuple[int, int] | None:
    """The value of `name = value`, `name: value` or `name is value` when it is a secret; keeps only the
    value's span."""
    marker = _CONNECTOR.match(text)
    start = marker.end() if marker else 0
    prose = bool(marker) and not re.search(r"[:=：]\s*['\"]?$", marker.group())
    end = len(text.rstrip("'\",;.!? \t\n" if prose else "'\",;"))
    return (start, end) if end > start and secret_value(text[start:end], prose) else None


def bearer_value(text: str) -> tuple[int, int] | None:
    """The credential of an `Authorization: Bearer ...` header, when it looks random."""
    start = 6 + len(text[6:]) - len(text[6:].lstrip())
    token = text[start:]
    return (start, len(text)) if entropy(token) >= MIN_TOKEN_ENTROPY and char_classes(token) >= 2 else None


def listed_value(text: str) -> tuple[int, int] | None:
    """The value of a `name: X / value: Y` pair (Kubernetes env, Helm values) whose name is secret-sounding."""
    start = text.lower().rindex("value:") + len("value:")
    start += len(text[start:]) - len(text[start:].lstrip(" '\""))
    end = len(text.rstrip("'\""))
    return (start, end) if end > start and secret_value(text[start:end], prose=False) else None


_SECRET_NAMES = (r"\b(?:[A-Za-z0-9]{1,32}[_-]){0,3}(?:api[_-]?key|apikey|secret(?:[_-]?key)?|client[_-]?secret|"
                 r"access[_-]?token|auth[_-]?token|refresh[_-]?token|bearer[_-]?token|private[_-]?key|password|"
                 r"passwd|passphrase|db[_-]?pass|token|passwort|kennwort|contrase[nñ]a|mot[ _]de[ _]passe|senha)|"
                 + normalize("пароль") + "|密码|パスワード")
"""Names a secret is assigned to, in code, config and prose (RE2's word boundary is ASCII-only: non-Latin names
without it)."""

_PROSE = r"(?:\s+[^\s:=]{1,15}){0,3}\s+(?:is|was|est|es|ist|era|war|é|è)\s*:?\s*|\s*(?:是|为|は)\s*"
"""How a sentence joins a name to its value, up to three words apart ("the password is ...", "a senha do banco
é ...", "密码是 ..."). A value in a sentence ends at a space or punctuation, never at a colon: in "the secret
key is aws_secret_key: ..." the words before the colon are a name, and the assignment after it is the secret."""

SECRET_SIGNALS = [
    Signal("pii.private-key", PII, r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
           r"(?:[A-Za-z0-9+/=\s]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?", entity="apiKey"),
    Signal("pii.aws-access-key", PII, r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b", entity="apiKey",
           refine=random_token),
    Signal("pii.aws-secret-key", PII, r"(?i:aws[_-]?secret[_-]?(?:access[_-]?)?key|secret[_-]?access[_-]?key)"
           r"[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+]{40}\b", entity="apiKey", refine=assigned_value),
    Signal("pii.github-token", PII, r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b",
           entity="apiKey", refine=random_token),
    Signal("pii.slack-token", PII, r"\b(?:xox[abposre]-[A-Za-z0-9-]{10,255}|https://hooks\.slack\.com/services/"
           r"T[A-Za-z0-9]{1,64}/B[A-Za-z0-9]{1,64}/[A-Za-z0-9]{1,64})", entity="apiKey", refine=random_token),
    Signal("pii.openai-key", PII, r"\bsk-(?:proj-|svcacct-|admin-|ant-api\d\d-)?[A-Za-z0-9_-]{32,255}",
           entity="apiKey", refine=random_token),
    Signal("pii.google-api-key", PII, r"\bAIza[0-9A-Za-z_-]{35}", entity="apiKey", refine=random_token,
           guard=not_between(after=char_in("-", word=True))),
    Signal("pii.stripe-key", PII, r"\b(?:[rs]k|whsec)_(?:live|test)_[0-9a-zA-Z]{24,255}", entity="apiKey",
           refine=random_token),
    Signal("pii.jwt", PII, r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
           entity="apiKey", refine=jwt_span),
    Signal("pii.assigned-secret", PII,
           rf"(?i:(?:{_SECRET_NAMES})[\"']?)(?:\s*[:=：]\s*['\"]?[^\s'\"]{{8,256}}['\"]?"
           rf"|(?i:{_PROSE})['\"]?[^\s'\":]{{8,256}}['\"]?(?:[\s.,;!?]|$))",
           entity="apiKey", refine=assigned_value),
    Signal("pii.bearer-token", PII, r"(?i:\bbearer\s+)[A-Za-z0-9._~+/-]{20,1000}=*", entity="apiKey",
           refine=bearer_value),
    Signal("pii.listed-secret", PII,
           rf"(?i:\bname:\s*['\"]?(?:{_SECRET_NAMES})['\"]?\s*\n\s*value:\s*)['\"]?[^\s'\"]{{8,256}}['\"]?",
           entity="apiKey", refine=listed_value),
]
