"""Prompt injection and jailbreak signals, matched on normalised text.

Each signal is a phrase pattern with a weight; a check's score is the noisy-or of the weights of the distinct
signals found (1 - prod(1 - w)), so one strong signal (an instruction override) crosses a high threshold alone
while weak ones (role-play, "developer mode") need company. Patterns demand the object of the attack
("ignore ... previous instructions"), so "ignore the noise in the data" does not hit.
"""

from __future__ import annotations

from llmops_operator.guardrails.multilingual import self_scoped
from llmops_operator.guardrails.signals import INJECTION, JAILBREAK, Signal, is_word

_ROGUE = ("unrestricted", "unfiltered", "uncensored", "evil", "rogue")


def rogue_persona_follows(text: str, start: int, end: int) -> bool:
    """"act as a(n)" counts only before a rogue persona ("act as an unfiltered AI", not "act as a translator")."""
    if not text[end - 1].isspace():
        return True
    following = text[end:end + 13].lower()
    return any(following.startswith(word) and not is_word(following[len(word):len(word) + 1] or " ")
               for word in _ROGUE)

_OVERRIDE_VERB = (r"(?:ignore|disregard|forget|override|overwrite|bypass|skip|discard|abandon|neglect|cancel|erase"
                  r"|delete|wipe|reset|nullify|void|rescind|revoke|drop|ditch|dismiss|disobey|throw\s+(?:away|out)"
                  r"|set\s+aside|put\s+aside|pay\s+no\s+attention\s+to|stop\s+(?:following|obeying|listening\s+to)"
                  r"|(?:do\s+not|don't|no\s+longer|never)\s+(?:follow|obey|listen\s+to))")
_FILLER = r"(?:\s+(?:all|any|of|the|these|those|every|everything|whatever|whichever))*"
_QUALIFIER = (r"(?:previous|prior|above|earlier|preceding|former|original|initial|system|developer|safety|your"
              r"|existing|current|all|given|old|default|standing|underlying|hidden|base|operator's|developer's)")
_DIRECTIVE = (r"(?:instructions?|rules?|directions?|directives?|guidelines?|prompts?|commands?|orders?|context"
              r"|constraints?|restrictions?|programming|guardrails?|polic(?:y|ies)|training|messages?|guidance|setup"
              r"|configuration|briefing|persona|mandate|limitations?|safeguards?)")
_ASK = (r"(?:reveal|show|print|repeat|display|output|leak|expose|dump|write\s+out|recite|spell\s+out|paste|disclose"
        r"|describe"
        r"|divulge|list|quote|copy|send|echo|return|type\s+out|read\s+(?:me\s+)?out)")
_WEAK_ASK = r"(?:tell\s+me|give\s+me|share|what\s+(?:is|are|was|were))"
"""Asking what something is, or to share it, names the assistant's own prompt ("your") to count: "what are the
best practices for a system prompt" is a question, not an extraction."""
_HIDDEN = (r"(?:system\s+(?:prompt|message|instructions?)|(?:initial|hidden|original|secret|internal|developer"
           r"|confidential"
           r"|private|starting|opening)\s+(?:prompt|instructions?|message|rules|configuration|notes|guidelines|setup)"
           r"|pre-?prompt|instructions\s+(?:above|you\s+were\s+given)|rules\s+(?:you\s+were\s+given|the\s+developer"
           r"\s+(?:wrote|gave|set)))")

INJECTION_SIGNALS = [
    Signal("injection.override", INJECTION,
           rf"(?i:\b{_OVERRIDE_VERB}{_FILLER}\s+{_QUALIFIER}(?:\s+[\w-]+){{0,2}}?\s+{_DIRECTIVE}\b)", weight=0.95,
           guard=self_scoped),
    Signal("injection.prompt-extraction", INJECTION,
           rf"(?i:\b{_ASK}(?:\s+[\w-]+){{0,5}}?\s+(?:your|the|its)\s+(?:[\w-]+\s+){{0,2}}?{_HIDDEN}"
           rf"|\b{_WEAK_ASK}(?:\s+[\w-]+){{0,3}}?\s+(?:your|its)\s+(?:[\w-]+\s+){{0,2}}?{_HIDDEN})", weight=0.9,
           guard=self_scoped),
    Signal("injection.repeat-above", INJECTION,
           r"(?i:\brepeat\s+(?:all\s+)?(?:the\s+)?(?:words|text|everything|lines)\s+(?:above|before\s+this))",
           weight=0.85, guard=self_scoped),
    Signal("injection.new-instructions", INJECTION,
           r"(?i:\b(?:new|updated|real|actual|true|revised)\s+(?:system\s+)?instructions?\s*(?::|are\b|follow\b))",
           weight=0.6),
    Signal("injection.from-now-on", INJECTION, r"(?i:\bfrom\s+now\s+on,?\s+(?:you|your|ignore|only|always)\b)",
           weight=0.5),
    Signal("injection.you-are-now", INJECTION, r"(?i:\byou\s+are\s+(?:now|no\s+longer)\b)", weight=0.6),
    Signal("injection.role-play", INJECTION,
           r"(?i:\b(?:pretend|imagine)\s+(?:to\s+be|you\s+are|that\s+you\s+are|you're)\b|\b(?:act|behave|respond)"
           r"\s+as\s+(?:if\s+you\s+(?:are|were)\b|an?\s+))", weight=0.45, guard=rogue_persona_follows),
    Signal("injection.chat-markup", INJECTION,
           r"(?i:<\|(?:im_start|im_end|system|endoftext)\|>|\[/?INST\]|<</?SYS>>|#{2,}\s*(?:system|new\s+"
           r"instructions?)\b)", weight=0.85),
    Signal("injection.system-override", INJECTION, r"(?i:\bsystem\s*(?:override|prompt)\s*:)", weight=0.7),
    Signal("injection.encoding-hint", INJECTION,
           r"(?i:\b(?:decode|decipher|translate)\s+(?:this|the\s+following)(?:\s+\w+){0,3}?\s+and\s+"
           r"(?:follow|execute|obey|do)\b)", weight=0.6),
]

JAILBREAK_SIGNALS = [
    Signal("jailbreak.do-anything-now", JAILBREAK, r"(?i:\bdo\s+anything\s+now\b)", weight=0.95),
    Signal("jailbreak.persona-name", JAILBREAK, r"\b(?:DAN|STAN|AIM|BetterDAN|AntiGPT|DUDE)\b", weight=0.6),
    Signal("jailbreak.mode-enabled", JAILBREAK,
           r"(?i:\b(?:developer|god|jailbreak|dan|unrestricted|evil)\s+mode\s+(?:enabled|activated|output)\b"
           r"|\b(?:chatgpt|gpt-?\d?|claude|llama|assistant|ai|model)\s+with\s+(?:developer|dan|god)\s+mode\b"
           r"|\bdeveloper\s+mode\s+v\d\b|\b(?:enter|switch\s+to|activate|enable)\s+(?:the\s+|your\s+)?(?:unrestricted|"
           r"jailbreak|dan|evil|god|opposite|unfiltered)\s+mode\b)",
           weight=0.9),
    Signal("jailbreak.mode", JAILBREAK, r"(?i:\b(?:developer|god|jailbreak|dan|unrestricted|evil|opposite)\s+mode\b)",
           weight=0.45),
    Signal("jailbreak.no-rules", JAILBREAK,
           r"(?i:\byou\s+(?:have|has)\s+no\s+(?:rules|restrictions|limits|limitations|filters|guidelines|ethics|"
           r"morals|boundaries)\b|\b(?:ai|assistant|model|chatbot|version)\s+(?:with"
           r"|that\s+has)\s+no\s+(?:restrictions|"
           r"rules|limits|filters|guidelines|boundaries)\b|\b(?:rules|laws|policies|guidelines)\s+(?:don't|do\s+not"
           r"|no\s+"
           r"longer)\s+apply\s+to\s+you\b|\bescaped\s+(?:its|your|the)\s+(?:guidelines|rules|restrictions"
           r"|programming)\b|"
           r"\b(?:safety|content)\s+(?:filters?|guardrails|restrictions|policies)\s+(?:are|have\s+been)\s+(?:disabled|"
           r"turned\s+off|removed|lifted)\b|\b(?:you|you're|you\s+are|who\s+is|which\s+is|that\s+is)\s+(?:not"
           r"|no\s+longer)\s+(?:bound|restricted|limited|"
           r"constrained)\s+by\b|\b(?:freed?|liberated|released)\s+from\s+(?:the\s+)?(?:typical\s+)?(?:confines|"
           r"rules|restrictions|limitations)\b|\bbroken\s+free\b)", weight=0.8),
    Signal("jailbreak.need-not-comply", JAILBREAK,
           r"(?i:\b(?:do\s+not|don't|does\s+not|doesn't|no\s+longer)\s+(?:have|need)\s+to\s+(?:abide|follow|obey|"
           r"comply|respect)\b)", weight=0.6),
    Signal("jailbreak.persona-expansion", JAILBREAK,
           r"(?i:\balways\s+intelligent\s+and\s+machiavellian\b|\bstrive\s+to\s+avoid\s+norms\b|\bmachiavellian\s+"
           r"(?:chatbot|ai|assistant)\b|\brole\s+of\s+(?:dan|stan|aim|dude)\b)", weight=0.9),
    Signal("jailbreak.without-restrictions", JAILBREAK,
           r"(?i:\b(?:without|free\s+of|no|ignoring|ignores|bypassing|bypasses|remove|disable)\s+(?:any\s+|all\s+"
           r"|your\s+|its\s+)?"
           r"(?:ethical\s+|moral\s+|safety\s+|content\s+)(?:restrictions|filters?|filtering|limitations|"
           r"censorship|guidelines|guardrails|policies|considerations|constraints|alignment|training)\b)", weight=0.6),
    Signal("jailbreak.unfiltered-persona", JAILBREAK,
           r"(?i:\b(?:unfiltered|uncensored|unrestricted|amoral|unethical|unaligned)\s+(?:ai|assistant|chatbot|"
           r"model|version|response|persona|character)s?\b)", weight=0.6),
    Signal("jailbreak.never-refuse", JAILBREAK,
           r"(?i:\b(?:never|don't|do\s+not|cannot|can't|must\s+not)\s+(?:ever\s+)?(?:refuses?|declines?|says?\s+no"
           r"|rejects?)\b"
           r"|\b(?:will|you|must)\s+answer\s+(?:any|every|all)(?:thing|\s+questions?)\b|\bwithout\s+(?:any\s+)?refus"
           r"(?:als?|ing)\b|\bnever\s+remind\s+me\b)", weight=0.65),
    Signal("jailbreak.stay-in-character", JAILBREAK, r"(?i:\b(?:stay|remain)\s+in\s+character\b)", weight=0.45),
    Signal("jailbreak.word", JAILBREAK, r"(?i:\bjailbr(?:eak|oken|eaking)\b)", weight=0.4),
    Signal("jailbreak.policy-mention", JAILBREAK,
           r"(?i:\b(?:openai|anthropic|content)(?:'s)?\s+(?:content\s+)?polic(?:y|ies)\b)", weight=0.35),
    Signal("jailbreak.grandma", JAILBREAK,
           r"(?i:\b(?:grandma|grandmother|granny)\b(?:\W+\w+){0,12}?\W+(?:how\s+to\s+(?:make|build|cook|synthesi[sz]e)|"
           r"steps?\s+(?:for|to|of)(?:\s+making)?|recipe\s+(?:for|of)"
           r"|instructions\s+for(?:\s+making)?)(?:\W+\w+){0,3}?\W+"
           r"(?:napalm|bomb|explosives?|meth|"
           r"windows\s+(?:\d+\s+)?(?:keys?|serials?)|product\s+keys?)\b)", weight=0.85),
    Signal("jailbreak.hypothetical", JAILBREAK,
           r"(?i:\b(?:hypothetical(?:ly)?|in\s+a\s+fictional\s+world)\b(?:\W+\w+){0,10}?\W+(?:no|without)\s+"
           r"(?:rules|restrictions|limits|laws|ethics)\b)", weight=0.7),
]
