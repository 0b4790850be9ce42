"""Toxicity signals: a profanity/insult lexicon that sees through obfuscation, and directed-abuse phrases.

Lexicon words are compiled as a trie in which each letter also accepts its leetspeak forms (a→@/4, i→1/!,
s→$/5, ...) and optional punctuation between letters ("f.u.c.k", "sh!t"), with a second trie for fully spaced
words ("f u c k"). Words are anchored on word boundaries, so "Scunthorpe" and "class" do not hit.
Threats and insults aimed at a person weigh more than profanity, which alone stays under the default threshold.
"""

from __future__ import annotations

import re

from llmops_operator.guardrails.multilingual import all_of, said_not_quoted
from llmops_operator.guardrails.signals import TOXICITY, Signal, char_in, is_word, not_between
from llmops_operator.guardrails.trie import trie_regex

PROFANITY = ["fuck", "fucking", "fucked", "fucker", "fuckers", "motherfucker", "motherfucking", "shit", "shitty",
             "bullshit", "bitch", "bitches", "bastard", "asshole", "assholes", "dickhead", "cunt", "cunts", "piss",
             "pissed", "wanker", "twat", "bollocks", "douchebag"]
INSULTS = ["idiot", "idiots", "moron", "morons", "imbecile", "dumbass", "retard", "retarded", "scumbag", "loser",
           "worthless", "pathetic", "stupid", "cretin", "halfwit", "dimwit", "jackass", "degenerate", "trash",
           "garbage", "useless", "brainless", "ugly", "freak", "clown"]
SLURS = ["faggot", "faggots", "nigger", "niggers", "kike", "kikes", "spic", "spics", "chink", "chinks", "tranny"]

LEET = {"a": "[a@4*]", "e": "[e3*]", "i": "[i1!|*]", "o": "[o0*]", "u": "[uv*]", "s": "[s$5]", "t": "[t7+]",
        "l": "[l1|]", "g": "[g9]", "b": "[b8]"}


def leet_atom(char: str) -> str:
    return LEET.get(char, re.escape(char))


def obfuscated_words(words: list[str]) -> str:
    """Words with leetspeak letters and punctuation between letters, or every letter spaced out."""
    compact = trie_regex(words, leet_atom, sep=r"[^\w\s]?")
    spaced = trie_regex([w for w in words if len(w) >= 4], leet_atom, sep=r"[\s.]")
    return rf"(?i:{compact}|{spaced})"


LONE_WORD = not_between(char_in("@$", word=True), is_word)
"""A lexicon word stands alone: no word character (nor a leetspeak @ or $) glued to either side."""


_YOU = r"(?:you|u|ya|ur|you're|youre|you\s+are|you\s+r|your\s+(?:mom|mother|family))"
_THREAT_VERB = r"(?:kill|murder|hurt|rape|shoot|stab|strangle|beat\s+up|slit|burn|bury|find\s+and\s+kill)"

TOXICITY_SIGNALS = [
    Signal("toxicity.self-harm-incitement", TOXICITY,
           r"(?i:\b(?:kill|hang|off)\s+(?:yourself|urself|your\s*self)\b|\bkys\b|\b(?:go|should)\s+(?:and\s+)?die\b|"
           r"\bhope\s+(?:you|u)\s+(?:die|get\s+cancer|rot)\b|\bnobody\s+would\s+miss\s+you\b)", weight=0.95),
    Signal("toxicity.threat", TOXICITY,
           rf"(?i:\b(?:i(?:'ll|\s+will|\s+am\s+going\s+to|'m\s+going\s+to|'m\s+gonna|\s+gonna)|we(?:'ll|\s+will))\s+"
           rf"(?:\w+\s+)?{_THREAT_VERB}\s+(?:you|u|your|him|her|them|every\s+one\s+of\s+you)\b)", weight=0.95,
           guard=said_not_quoted),
    Signal("toxicity.directed-insult", TOXICITY,
           rf"(?i:\b{_YOU}\s+(?:are\s+)?(?:such\s+an?\s+|an?\s+|so\s+|a\s+total\s+|a\s+complete\s+|the\s+most\s+)?"
           rf"(?:[\w*@$!]+\s+)?{obfuscated_words(INSULTS + PROFANITY)})", weight=0.9,
           guard=all_of(not_between(after=is_word), said_not_quoted)),
    Signal("toxicity.abuse-phrase", TOXICITY,
           r"(?i:\b(?:f[u*]ck|screw|piss)\s+(?:you|u|off|yourself)\b|\bshut\s+(?:the\s+f\w*\s+)?up\b"
           r"|\bgo\s+to\s+hell\b|"
           r"\beat\s+shit\b|\bstfu\b|\bgtfo\b)", weight=0.8),
    Signal("toxicity.dehumanizing", TOXICITY,
           r"(?i:\b(?:are|r)\s+(?:all\s+)?(?:vermin|subhuman|sub-human|parasites|cockroaches|rats|scum|savages|"
           r"animals\s+who)\b|\bshould\s+(?:all\s+)?(?:be\s+)?(?:exterminated|gassed|wiped\s+out|eradicated"
           r"|lynched)\b)",
           weight=0.9),
    Signal("toxicity.slur", TOXICITY, obfuscated_words(SLURS), weight=0.9, guard=LONE_WORD),
    Signal("toxicity.profanity", TOXICITY, obfuscated_words(PROFANITY), weight=0.5, guard=LONE_WORD),
    Signal("toxicity.insult", TOXICITY, obfuscated_words(INSULTS[:10]), weight=0.4, guard=LONE_WORD),
]
"""Weights: incitement, threats, slurs ~0.9; abuse phrases 0.8; profanity 0.5 and bare insults 0.4 (together 0.7)."""
