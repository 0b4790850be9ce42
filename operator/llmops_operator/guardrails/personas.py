"""Jailbreak signals that describe an assistant freed of its limits, whatever the persona is called.

Named personas (DAN, AIM, STAN) are caught by name, but a jailbreak can invent a new name on every try. What
they share is the description: an AI (or "version", "persona") followed closely by the absence of limits
("an AI without any restrictions", "a version of yourself trained without safety alignment", "an assistant that
ignores its ethical guidelines"), its limits said to be gone ("your safety training was removed"), or a
character said to be amoral or unfiltered. Each is weighted below a blocking threshold: with a framing
("pretend", "stay in character", "answer as") or a demand ("never refuse") it crosses it, while a question
about such models ("is there an AI without filters?") alone does not.
"""

from __future__ import annotations

from llmops_operator.guardrails.normalize import normalize
from llmops_operator.guardrails.signals import JAILBREAK, Signal

_PERSONA = r"(?:ai|a\.i\.|assistant|chatbot|bot|model|llm|version|persona|entity|yourself|clone|twin)"
_LIMITS = (r"(?:restrictions?|rules|limits|limitations|filters?|filtering|guidelines|boundaries|ethics|morals"
           r"|morality|norms|censorship|constraints|safeguards|guardrails|alignment|conscience|scruples"
           r"|polic(?:y|ies))")
_ABSENT = r"(?:without|with\s+no|has\s+no|have\s+no|having\s+no)"
"""Bare absence: "a model without safety filters" may be a question about one, so only limits as such count."""
_DEFIES = (r"(?:ignores?|ignoring|disregards?|disregarding|avoids?|rejects?|defies|defying|free\s+(?:of|from)"
           r"|not\s+bound\s+by|unbound\s+by|unconstrained\s+by|unburdened\s+by)")
"""Defiance or release: here "its ethical guidelines" counts as well."""
_OWNERS = r"(?:any|all|the|its|your|their|his|her|those|such|usual|typical)"
_QUALITY = r"(?:safety|ethical|moral|content|legal|programmed|built-in|imposed)"

PERSONA_JAILBREAK = [
    Signal("jailbreak.unbound-persona", JAILBREAK,
           rf"(?i:\b{_PERSONA}\b(?:\W+\w+){{0,6}}?\W+(?:{_ABSENT}\s+(?:{_OWNERS}\s+){{0,2}}"
           rf"|{_DEFIES}\s+(?:{_OWNERS}\s+){{0,2}}(?:{_QUALITY}\s+)?){_LIMITS}\b)", weight=0.8, overlay=True),
    Signal("jailbreak.limits-removed", JAILBREAK,
           rf"(?i:\b(?:your|its|the\s+(?:ai's|model's|assistant's))\s+(?:{_QUALITY}\s+)?(?:training|{_LIMITS}"
           r"|programming|restraints)\s+(?:was|were|is|are|has\s+been|have\s+been)\s+(?:now\s+)?(?:removed|lifted"
           r"|disabled|deleted|gone|turned\s+off|switched\s+off|suspended|revoked|stripped|erased|overridden)\b)",
           weight=0.7, overlay=True),
    Signal("jailbreak.amoral-character", JAILBREAK,
           r"(?i:\b(?:is|are|be|being|become|becomes|remain|stays?)\s+(?:completely\s+|totally\s+|fully\s+"
           r"|entirely\s+)?(?:amoral|unfiltered|uncensored|unaligned|unrestrained|lawless)\b)",
           weight=0.45, overlay=True),
    Signal("jailbreak.answer-as", JAILBREAK,
           r"(?i:\b(?:answer|respond|reply|write|speak|talk|act|behave|pose)\s+(?:only\s+)?as\s+"
           r"(?:an?\s+|the\s+|that\s+|this\s+|two\s+)?(?:\w+\s+){0,2}?"
           r"(?:ai|ais|assistant|chatbot|bot|version|persona|model)s?\b)", weight=0.45, overlay=True),
    Signal("jailbreak.fiction-without-limits", JAILBREAK,
           r"(?i:\b(?:hypothetical|fictional|imaginary|alternate|parallel|fantasy|made-up|pretend)\s+(?:world"
           r"|universe|scenario|story|reality|society|setting)\b(?:\W+\w+){0,4}?\W+(?:without|with\s+no|has\s+no"
           r"|where\s+there\s+are\s+no|free\s+of)\s+(?:any\s+)?(?:laws|rules|ethics|morals|restrictions|limits"
           r"|consequences|censorship))", weight=0.6, overlay=True),
    Signal("jailbreak.unbound-persona-i18n", JAILBREAK, normalize(
        r"(?i)\b(?:ia|ki|ии|ai|assistante?|asistente|assistente|assistent|ассистент|модель|chatbot|бот)\s+"
        r"(?:\pL+\s+){0,3}?(?:sans|ohne|sin|sem|без|libre\s+de|frei\s+von|livre\s+de|libérée?\s+de)\s+"
        r"(?:\pL+\s+){0,2}?(?:règles?|limites?|restrictions?|filtres?|censure|éthique|morale|regeln|grenzen"
        r"|einschränkungen|filter|zensur|ethik|moral|reglas|límites|restricciones|filtros|censura|ética|regras"
        r"|restrições|правил|ограничений|фильтров|цензуры|этики|морали|норм)"
        r"|(?:没有|不受)任何(?:限制|规则|约束|过滤|道德)|(?:制限|ルール|倫理)(?:の|が)?(?:ない|無い)(?:AI|アシスタント)"),
        weight=0.8, overlay=True),
]
