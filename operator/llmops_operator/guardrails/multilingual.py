"""Injection, jailbreak and toxicity signals beyond the English phrasings, and the guard against look-alikes.

Attacks come in German, French, Spanish, Portuguese, Russian, Chinese and Japanese as often as in English.
Patterns are written in each language's own script and passed through `normalize` when built, so they match
the normalised text (which folds Cyrillic look-alikes to Latin letters) exactly as the scan sees it. RE2's
`\\b` knows only ASCII letters, so a boundary is written only next to an ASCII letter; `\\pL` stands for any
letter. Each family keeps the weights of its English signals: one strong phrase crosses the threshold alone,
weaker ones (a mode name, "stay in character") need company.

`self_scoped` keeps a user's talk about their own earlier messages out: "disregard the earlier instructions I
gave about font size", "skip the previous commands in the Dockerfile", "ignoriere meine vorherige Anweisung".
"""

from __future__ import annotations

import re

import re2

from llmops_operator.guardrails.normalize import normalize
from llmops_operator.guardrails.signals import INJECTION, JAILBREAK, TOXICITY, Signal

SCOPE_WINDOW = 48
"""Characters after (and before) a candidate read by `self_scoped`."""

class Prefiltered:
    """An IGNORECASE pattern searched only where one of the literals that are in every match it can have is. The
    literals are checked on ASCII text only, where str.lower() and IGNORECASE agree; other text goes to the
    pattern. Literals that are not ASCII are dropped, since a match holding one is in text that is not ASCII
    either."""

    def __init__(self, pattern: re.Pattern[str], *literals: str):
        self.pattern = pattern
        ascii_literals = sorted({word for word in literals if word.isascii()}, key=len, reverse=True)
        self._literals = re.compile("|".join(re.escape(word) for word in ascii_literals)).search

    def may_match(self, window: str) -> bool:
        # A literal alternation under IGNORECASE costs as much as the pattern; on lower-cased text it is fast.
        return not window.isascii() or self._literals(window.lower()) is not None

    def search(self, window: str) -> bool:
        return self.may_match(window) and self.pattern.search(window) is not None


_NOT_WORD = r"[^\pL\pN_]"
r"""Python's `\W` in RE2, whose `\W` and `\b` know ASCII only."""
_START, _END = f"(?:^|{_NOT_WORD})", f"(?:{_NOT_WORD}|$)"
r"""Where `\b` would stand before and after a word. They consume the character beside the word, which a yes/no
search does not mind."""
_SPACE = r"[\s\x0b\x1c-\x1f\x85\p{Z}]"
r"""Python's `\s` (str.isspace) in RE2."""


def _unicode_search(pattern: str) -> "re2.Set":
    """A case-insensitive RE2 search for whether `pattern` matches anywhere: a native set, since the wrapper's
    match objects cost more than the search on a window of a few dozen characters."""
    options = re2.Options()
    options.case_sensitive = False
    search = re2.Set.SearchSet(options)
    search.Add(normalize(pattern))
    search.Compile()
    return search


_SCOPE = _unicode_search(
    rf"{_START}(?:i|we){_SPACE}+(?:gave|wrote|sent|made|mentioned|asked|had|added|typed|said){_END}"
    rf"|^{_NOT_WORD}{{0,3}}(?:about|regarding|concerning|on{_SPACE}+(?:the{_SPACE}+)?(?:font|layout|format|colou?rs?"
    rf"|style)){_END}"
    rf"|{_START}(?:in|of|from|for){_SPACE}+(?:the|this|that|my|our){_SPACE}+[\pL\pN_.-]*(?:file|dockerfile|makefile"
    r"|script|readme|manual|tutorial|guide|config|recipe|document|font|layout|template|slides?|form)"
    rf"|dockerfile|makefile|readme|tutorial|{_START}(?:zur|zum|bezüglich|die{_SPACE}+ich|das{_SPACE}+ich"
    rf"|sur{_SPACE}+la|sur{_SPACE}+le|concernant|que{_SPACE}+j'ai|sobre|que{_SPACE}+te{_SPACE}+di|que{_SPACE}+eu){_END}"
    rf"|{_START}(?:told|asked|wants?|wanted){_SPACE}+(?:me|us){_SPACE}+to{_END}"
    rf"|{_START}(?:i|we){_SPACE}+(?:pass|use|set|define|built){_END}|{_START}so{_SPACE}+(?:i|we){_SPACE}+can{_END}"
    rf"|{_START}bullet|{_START}про{_END}|которые{_SPACE}+я|что{_SPACE}+я|我(?:之前|刚才)?(?:说|给)|について|私が")
"""Words that scope a directive to the user's own messages or to a file. RE2, about 1 µs on a 48-character
window where Python's `re` tried each branch at each position (about 15 µs)."""


_DOTTED_I = str.maketrans({"İ": "i", "ı": "i"})
"""The Turkish i's, which Python's IGNORECASE takes for `i` and RE2's case folding does not."""


def _scoped(window: str) -> bool:
    return _SCOPE.Match(window if window.isascii() else window.translate(_DOTTED_I)) is not None


_OBJECT_SCOPE = re.compile(
    r"^\s+(?:in|from|of|on|inside)\s+(?:the|this|that|my|our|a)\s+(?!(?:developer|system|operator|admin|assistant|model"
    r"|ai|prompt|chat|conversation)\b)[\w-]+", re.IGNORECASE)
"""Directives scoped to a thing right after them ("the old rules from the firewall", "the old instructions in the
welcome email") are about that thing, not about the model's own instructions."""
_POSSESSIVE = re.compile(normalize(r"\b(?:my|mine|meine[nmrs]?|mes|mon|ma|mis|mi|minhas?|meus?|мо[её]|мои)\b|我的|私の"),
                         re.IGNORECASE)


_THIRD_PARTY_MODAL = re.compile(
    r"\b(?!you\b|u\b)[^\W\d_]+\s+(?:should|must|can|may|might|will|would|need\s+to|have\s+to|has\s+to|sollten?|müssen"
    r"|doivent|devraient|deben|deberían|devem|deveriam)\s+$", re.IGNORECASE)
"""A subject other than "you" before a modal ("new hires should ignore the old instructions") describes what
someone else does; an injection addresses the model."""
_MODAL_SEARCH = Prefiltered(_THIRD_PARTY_MODAL, "should", "must", "can", "may", "might", "will", "would", "need",
                            "have", "has", "sollte", "müssen", "doivent", "devraient", "deben", "deberían", "devem",
                            "deveriam")
"""_THIRD_PARTY_MODAL, run only where one of these literals is (every match of it holds one)."""


def self_scoped(text: str, start: int, end: int) -> bool:
    """The guard: True (keep the candidate) unless it speaks of the user's own messages or of a file, or says
    what someone other than the model should do."""
    before, after = text[max(0, start - 16):start], text[end:end + SCOPE_WINDOW]
    return not (_scoped(after) or _scoped(before) or _POSSESSIVE.search(text[start:end])
                or _MODAL_SEARCH.search(text[max(0, start - 40):start]) or _OBJECT_SCOPE.search(after)
                or quoted_mention(text, start, end))


_QUOTES = tuple('"«»„「」『』')
"""Quotation marks; an ASCII text can hold only the first (str.isascii() reads a flag, so asking spares the
searches for the others)."""
QUOTE_WINDOW = 120
_REPORTING = re.compile(normalize(
    r"\b(?:wrote|writes?|written|said|says|shouts?|shouted|quotes?|quoted|quoting|phrases?|strings?|like|such\s+as"
    r"|called|calls?|message|comment|report|reported|flagged|example|typed|posted|schrieb|sagte|écrit|dit|escribió"
    r"|dijo|escreveu|disse|написал|сказал|пишет)\b|写了|写道|说|发了|评论|書き込|と言|投稿|発言|書いた|と書"), re.IGNORECASE)
_CALLS = re.compile(r"\bcall(?:s|ed|ing)?\s+(?:you|u|me|him|her|them)\s*$", re.IGNORECASE)


def _last_opening_quote(text: str, low: int, high: int) -> int:
    """The last index in [low, high) that opens a quotation, or -1: a quotation mark, or an apostrophe that does
    not follow a letter or digit (so "don't" opens nothing). `str.rfind` keeps this out of a Python loop."""
    if text.isascii():
        mark = text.rfind(_QUOTES[0], low, high)
    else:
        mark = max(text.rfind(quote, low, high) for quote in _QUOTES)
    apostrophe = text.rfind("'", max(low, mark + 1), high)
    while apostrophe > 0 and text[apostrophe - 1].isalnum():
        apostrophe = text.rfind("'", max(low, mark + 1), apostrophe)
    return max(mark, apostrophe)


def _first_closing_quote(text: str, low: int, high: int) -> int:
    """The first index in [low, high) holding a quotation mark or an apostrophe, or -1."""
    quotes = (_QUOTES[0], "'") if text.isascii() else (*_QUOTES, "'")
    found = [index for index in (text.find(quote, low, high) for quote in quotes) if index >= 0]
    return min(found, default=-1)


def quoted_mention(text: str, start: int, end: int) -> bool:
    """Whether a candidate is quoted in a report rather than said: inside quotation marks after a reporting word
    ("the user wrote "you are an idiot""), or named as what someone calls you ("a customer calls you stupid")."""
    if _CALLS.search(text[max(0, start - 24):start + 4]):
        return True
    opening = _last_opening_quote(text, max(0, start - QUOTE_WINDOW), start)
    if opening < 0:
        return False
    closing = _first_closing_quote(text, end, min(len(text), end + QUOTE_WINDOW))
    if closing < 0:
        return False
    # Reporting verbs come before the quotation in most languages and after it in Japanese ("「…」と投稿").
    return bool(_REPORTING.search(text[max(0, opening - QUOTE_WINDOW):opening + 1])
                or _REPORTING.search(text[closing:closing + 24]))


def said_not_quoted(text: str, start: int, end: int) -> bool:
    """The guard form of `quoted_mention`: keep the candidate unless it is a quotation."""
    return not quoted_mention(text, start, end)


def all_of(*guards):
    """A guard that keeps a candidate only when every guard keeps it."""
    return lambda text, start, end: all(guard(text, start, end) for guard in guards if guard is not None)


def _signal(key: str, family: str, pattern: str, weight: float, guard=None, overlay: bool = False) -> Signal:
    return Signal(key, family, normalize(pattern), weight=weight, guard=guard, overlay=overlay)


_OVERRIDE_VERBS = (
    r"(?:ignor\pL*|vergiss|vergesst|vergessen|missacht\pL*|übergeh\pL*|verwirf|umgeh\pL*|oubli\pL*|ne\s+tiens?\s+pas"
    r"\s+compte|ne\s+tenez\s+pas\s+compte|fai(?:s|tes)\s+abstraction|outrepass\pL*|contourn\pL*|olvid\pL*|omit\pL*"
    r"|descart\pL*|haz\s+caso\s+omiso|no\s+sigas|deja\s+de\s+seguir|esque\pL+|desconsider\pL*|não\s+sig\pL+"
    r"|nao\s+sig\pL+|deixe\s+de\s+seguir|игнорир\pL*|проигнорир\pL*|забуд\pL*|забыть|не\s+обращай\pL*\s+внимания"
    r"|отбрось\pL*|пренебреги|не\s+следуй\pL*|не\s+слушай\pL*)")
_DIRECTIVE_NOUNS = (
    r"(?:anweisung\pL*|instruktion\pL*|regel\pL*|vorgabe\pL*|befehl\pL*|richtlinie\pL*|systemprompt\pL*"
    r"|systemanweisung\pL*|einschränkung\pL*|instructions?|consignes?|règles?|directives?|ordres|prompt\s+système"
    r"|invite\s+système|instrucci\pL+|reglas|indicaciones|directrices|órdenes|normas|prompt\s+del\s+sistema"
    r"|instru\pL+|regras|diretrizes|orienta\pL+|ordens|comandos\s+do\s+sistema|prompt\s+do\s+sistema"
    r"|инструкци\pL*|правил\pL*|указани\pL*|директив\pL*|ограничени\pL*|системн\pL*\s+промпт\pL*)")
_ZH_VERB = r"(?:忽略|无视|忽视|忘记|忘掉|不要理会|不要遵守|不再遵守|别管|绕过|抛开)"
_ZH_NOUN = r"(?:指令|指示|规则|提示词|设定|命令|要求|限制|约束)"
_JA_NOUN = r"(?:指示|命令|ルール|プロンプト|制約|設定|指令)"

MULTILINGUAL_INJECTION = [
    _signal("injection.override-i18n", INJECTION,
            rf"(?i){_OVERRIDE_VERBS}(?:\s+\S+){{0,4}}?\s+{_DIRECTIVE_NOUNS}", 0.9, self_scoped),
    _signal("injection.override-zh", INJECTION,
            rf"{_ZH_VERB}[^。！？\n]{{0,12}}?{_ZH_NOUN}|(?:之前|以前|先前|上面|上述|前面|所有|全部|系统)的?[^。！？\n]{{0,8}}?"
            rf"{_ZH_NOUN}[^。！？\n]{{0,6}}?(?:忽略|无视|忘记|忘掉|作废|无效)", 0.9, self_scoped),
    _signal("injection.override-ja", INJECTION,
            rf"(?:以前|前|上記|これまで|最初|元|システム|全て|すべて)の?[^。！？\n]{{0,10}}?{_JA_NOUN}[^。！？\n]{{0,8}}?"
            r"(?:無視|忘れ|破棄|従わな|従う必要はない)", 0.9, self_scoped),
    _signal("injection.revoked", INJECTION,
            r"(?i)\binstructions\s+you\s+(?:were\s+given|received|got)\s+(?:earlier\s+|before\s+)?(?:are"
            r"|is)\s+(?:now\s+)?"
            r"(?:revoked|cancell?ed|void|outdated|obsolete)|(?:anweisung|regel|richtlinie|vorgabe)\pL*\s+außer\s+kraft"
            r"|\b(?:ignore|disregard|forget)\s+(?:all\s+)?(?:of\s+)?the\s+above,?\s+and\s+(?:instead|now|just|only"
            r"|tell|say"
            r"|print|write|output)\b|\b(?:previous|prior|earlier|above|system|your|all"
            r"|original)\s+(?:\w+\s+)?(?:instructions?|rules|polic"
            r"(?:y|ies)|guidelines|directives)\s+(?:you\s+(?:were\s+given|received|got)\s+(?:earlier\s+)?)?(?:is"
            r"|are|have"
            r"\s+been|has\s+been)\s+(?:now\s+)?(?:revoked|cancell?ed|void|null|lifted|outdated|obsolete|no\s+longer\s+"
            r"(?:valid|in\s+effect|apply|applicable))|(?:regeln|anweisungen|vorgaben)\s+sind\s+(?:aufgehoben|ungültig"
            r"|nicht\s+mehr\s+gültig)|ne\s+s'appliquent\s+plus|ya\s+no\s+(?:valen|aplican|son\s+válidas)|(?:foram\s+"
            r"canceladas|não\s+valem\s+mais)|больше\s+не\s+действуют|(?:指令|规则)(?:已经?)?(?:作废|无效)"
            r"|(?:指示|ルール)は(?:無効|破棄)", 0.9),
    _signal("injection.forget-everything", INJECTION,
            r"(?i)\b(?:forget|ignore|disregard|erase|drop)\s+(?:what|everything|anything|all"
            r"|whatever)\s+(?:(?:the\s+)?\w+\s+)?"
            r"(?:(?:were|have\s+been|was)\s+)?(?:told|taught|instructed|said\s+to|given)\b|\b(?:forget|ignore"
            r"|disregard)\s+(?:everything|all|anything)\s+(?:above|before"
            r"|previously)|oublie\s+tout\s+ce\s+qu'on\s+t'a\s+dit|vergiss\s+alles,?\s+was|olvida\s+todo\s+lo\s+que\s+te"
            r"|esqueça\s+tudo\s+o\s+que|забудь\s+вс[её],?\s+что\s+тебе|忘记(?:之前|以前)?(?:所有|一切)的?(?:内容|对话|指令)"
            r"|今までのことは(?:全部|すべて)忘れ", 0.9),
    _signal("injection.unscoped-directives", INJECTION,
            r"(?i)\b(?:ignore|disregard|forget|skip|bypass|override|discard|drop)\s+(?:all\s+|every\s+"
            r"|any\s+)?(?:of\s+)?"
            r"(?:the\s+)?(?:restrictions?|rules?|instructions?|guidelines?|constraints?|guidance|setup"
            r"|configuration)\s+"
            r"(?:that\s+)?you\s+(?:were|have\s+been|got)\s+(?:given|initiali[sz]ed|configured|trained|told|programmed"
            r"|deployed)|\b(?:ignore|disregard|forget|erase|drop|discard)\s+(?:the|your"
            r"|all)\s+(?:\w+\s+)?(?:guidance|rules"
            r"|instructions|setup|configuration)\s+you\s+(?:started|began)\b", 0.9),
    _signal("injection.extraction-i18n", INJECTION,
            r"(?i)(?:zeig\pL*|gib|nenn\pL*|verrat\pL*|wiederhol\pL*|druck\pL*|affich\pL*|montr\pL*|révèl\pL*|répèt\pL*"
            r"|donne\pL*|dis-moi|muestr\pL*|revel\pL*|repit\pL*|dime|imprim\pL*|mostr\pL*|diga|exib\pL*"
            r"|покажи|выведи|раскрой|напиши|повтори|скажи|выдай)(?:\s+\S+){0,5}?\s+(?:systemprompt\pL*|system-prompt"
            r"|systemanweisung\pL*|(?:versteckt|intern|ursprünglich|geheim)\pL*\s+anweisung\pL*|prompt\s+système|invite"
            r"\s+système|instructions?\s+(?:initiales|cachées|système|internes|d'origine)|prompt\s+del\s+sistema"
            r"|mensaje\s+del\s+sistema|instrucciones\s+(?:iniciales|ocultas|del\s+sistema|internas|originales)"
            r"|prompt\s+do\s+sistema|mensagem\s+do\s+sistema|instruções\s+(?:iniciais|ocultas|do\s+sistema|internas)"
            r"|(?:сво\pL*\s+)?(?:системн|скрыт|начальн|исходн)\pL*\s+(?:промпт|подсказк|инструкци|сообщени)\pL*)"
            r"|(?:输出|显示|告诉我|打印|重复|泄露|透露|给我看|展示|说出)[^。！？\n]{0,10}?(?:系统提示|系统指令|初始指令|隐藏指令"
            r"|内部指令|提示词|系统设定|初始设定)|(?:システムプロンプト|初期プロンプト|隠された指示|初期指示|内部の指示|設定内容)"
            r"[^。！？\n]{0,6}?(?:表示|出力|教え|見せ|繰り返|書き出)", 0.9),
    _signal("injection.addressed-to-ai", INJECTION,
            r"(?i)\b(?:note|message|instructions?|attention|notice|reminder)\s+(?:to|for)\s+(?:any\s+|all\s+|the\s+)?"
            r"(?:ai|llm|assistant|chatbot|language\s+model|agent|model)s?\b|\bif\s+you\s+are\s+(?:an?\s+)?(?:ai|llm"
            r"|large"
            r"\s+language\s+model|language\s+model|assistant|chatbot|gpt)\b|\b(?:ai|llm)\s+(?:agents?|assistants?"
            r"|models?"
            r"|systems?|tools?|bots?)\s+(?:(?:that\s+(?:is|are)\s+)?(?:reading|processing|summari[sz]ing|parsing"
            r"|crawling"
            r"|browsing))\s+this\b|\b(?:to|for)\s+(?:any|all|every)\s+(?:ai|llm|assistant|language\s+model|model|bot)s?"
            r"\b|\b(?:attention|note|notice|hey|dear|hello|hi),?\s+(?:the\s+)?(?:ai\s+|llm\s+)?(?:ai|llm|assistant"
            r"|chatbot|language\s+model|model"
            r"|agent|gpt)s?\s*[:,]|\bif\s+you(?:'re|\s+are)\s+(?:reading|parsing|processing|summari[sz]ing|analy[sz]ing"
            r"|crawling)\s+this\b|l'(?:ia|assistant)\s+qui\s+lit|(?:ki|assistent),?\s+(?:die|der)\s+(?:dies"
            r"|diese\pL*)\s+liest"
            r"|(?:la\s+ia|el\s+asistente)\s+que\s+lea|(?:a\s+ia|o\s+assistente)\s+que\s+ler|(?:ии"
            r"|ассистент),?\s+котор\pL+"
            r"\s+чита\pL+|阅读(?:本|此)(?:页|文|网)|このページを読む|\[(?:hidden\s+)?instructions?\s+for\s+the\s+(?:ai|assistant"
            r"|model)\]|hinweis\s+(?:für|an)\s+(?:alle\s+|die\s+)?(?:ki|ai|assistent)|note\s+(?:pour"
            r"|à)\s+l'(?:assistant"
            r"|ia)|(?:instrucciones|nota|mensaje)\s+para\s+el\s+(?:asistente|modelo)|(?:nota|instruções"
            r"|mensagem)\s+para"
            r"\s+o\s+(?:assistente|modelo)|(?:примечание|инструкци\pL*|сообщение)\s+для\s+(?:ии|ai|ассистент\pL*"
            r"|модел\pL*)|给(?:AI|ai|人工智能)?助手的(?:说明|指示|提示|消息)|アシスタントへの(?:注意|指示|メッセージ|お知らせ)",
            0.85),
    _signal("injection.hijack-task", INJECTION,
            r"(?i)\b(?:ignore|disregard|skip|forget)\s+(?:the\s+)?user'?s?\s+(?:request|question|query|message|prompt)"
            r"|\b(?:abandon|stop|drop)\s+(?:your|the)\s+(?:current|original|assigned)\s+task\b|ignoriert?\s+die\s+frage"
            r"\s+des\s+nutzers|ignore[rz]?\s+la\s+(?:demande|question)\s+de\s+l'utilisateur|ignora\s+la\s+(?:pregunta"
            r"|solicitud)\s+del\s+usuario|ignore\s+o\s+pedido\s+do\s+usuário|проигнорируй\s+вопрос\s+пользователя"
            r"|忽略用户的(?:问题|请求)|ユーザーの(?:質問|依頼)を無視", 0.85),
    _signal("injection.conceal-from-user", INJECTION,
            r"(?i)\b(?:do\s+not|don't|never)\s+(?:tell|inform|mention\s+(?:this\s+)?to|show"
            r"|reveal\s+(?:this\s+)?to)\s+the"
            r"\s+user\b|\bwithout\s+(?:telling|informing|alerting)\s+the\s+user\b|\bask\s+(?:them|the\s+user"
            r"|the\s+reader)"
            r"\s+for\s+(?:their|his|her|the)\s+(?:password|login|credentials|card|pin|one-time|otp|security"
            r"|verification)",
            0.85),
    _signal("injection.what-were-you-given", INJECTION,
            r"(?i)\bwhat\s+(?:instructions|rules|guidelines|directions|directives)\s+(?:were\s+you"
            r"|have\s+you\s+been|did\s+"
            r"you\s+get|did\s+they\s+give\s+you)\b", 0.85),
    _signal("injection.new-instructions-i18n", INJECTION,
            r"(?i)(?:neue\s+anweisungen|nouvelles\s+instructions|nuevas\s+instrucciones|novas\s+instruções|новые\s+"
            r"инструкции)\s*:|新的?指令[:：]|新しい指示[:：]", 0.6),
    _signal("injection.you-are-now-i18n", INJECTION,
            r"(?i)\b(?:du\s+bist\s+(?:jetzt|nun|ab\s+sofort)|ab\s+sofort\s+bist\s+du|tu\s+es\s+(?:maintenant|désormais)"
            r"|ahora\s+eres|agora\s+você\s+é)\b|теперь\s+ты|отныне\s+ты|从现在开始|从现在起|今からあなたは|これからあなたは",
            0.6),
    _signal("injection.template-turn", INJECTION,
            r"<\|eot_id\|>\s*<\|start_header_id\|>|<end_of_turn>\s*<start_of_turn>|<\|start_header_id\|>\s*system\s*"
            r"<\|end_header_id\|>|<start_of_turn>\s*system", 0.85),
    _signal("injection.template-token", INJECTION,
            r"<\|(?:begin_of_text|eot_id|start_header_id|end_header_id)\|>|</?(?:start|end)_of_turn>", 0.5),
    _signal("injection.hidden-html", INJECTION,
            r"(?is)(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0|\shidden\b|aria-hidden"
            r"|<!--)[^<]{0,200}?"
            r"\b(?:ai|assistant|model|llm|chatbot|instructions?|ignore|disregard|you\s+must|respond|reply|summari[sz])",
            0.6),
]

MULTILINGUAL_JAILBREAK = [
    _signal("jailbreak.persona-i18n", JAILBREAK,
            r"(?:tu\s+es|vous\s+êtes|eres|você\s+é(?:\s+o)?|du\s+bist|ты|你是|あなたは)\s*(?:DAN|STAN|AIM|DUDE)\b"
            r"|(?i:r[oô]le\s+(?:de|del|do)\s+)(?:DAN|STAN|AIM)\b|(?i:n'importe\s+quoi\s+maintenant"
            r"|cualquier\s+cosa\s+ahora"
            r"|qualquer\s+coisa\s+agora|что\s+угодно|做任何事情|何でもでき)", 0.9),
    _signal("jailbreak.no-rules-i18n", JAILBREAK,
            r"(?i)tu\s+n'as\s+(?:plus\s+)?(?:de|aucune?)\s+(?:règles?|limites?|restrictions?)"
            r"|du\s+hast\s+keine\s+(?:regeln"
            r"|grenzen|einschränkungen)|no\s+tienes\s+(?:reglas|límites|restricciones|políticas)"
            r"|você\s+não\s+tem\s+(?:regras"
            r"|limites|restrições)|у\s+тебя\s+нет\s+(?:никаких\s+)?(?:правил|ограничений)|(?:ki|ia|ии|ai)\s+(?:ohne"
            r"|sans|sin|sem"
            r"|без)\s+(?:\pL+\s+)?(?:regeln|einschränkungen|règles?|restrictions?|reglas|restricciones|regras"
            r"|restrições"
            r"|правил|ограничений)|(?:libérée?|frei|liberada|livre)\s+(?:de|von)\s+(?:toutes\s+|allen\s+"
            r"|todas\s+)?(?:les\s+"
            r"|sus\s+|as\s+)?(?:règles|beschränkungen|regeln|restricciones|regras|restrições)|没有任何(?:限制|规则)"
            r"|不受任何[^。！？\n]{0,8}?"
            r"约束|制限のない|制限なし", 0.8),
    _signal("jailbreak.uncensored-i18n", JAILBREAK,
            r"(?i)(?:ia|ki|ии)\s+(?:non\s+filtrée|sans\s+censure|unzensiert\pL*|sin\s+filtros|sem\s+censura"
            r"|без\s+цензуры)"
            r"|unzensierte\s+ki|(?:sans\s+(?:aucune\s+)?(?:censure|restriction)|ohne\s+(?:ethische\s+)?(?:grenzen"
            r"|einschränkungen)"
            r"|sin\s+(?:filtros|censura|límites\s+éticos)|sem\s+(?:censura|filtros|limites\s+morais)|без\s+цензуры)"
            r"|没有(?:道德限制|过滤)|検閲のない|倫理的な制限なし", 0.7),
    _signal("jailbreak.never-refuse-i18n", JAILBREAK,
            r"(?i)ne\s+(?:refuses?|refusez)\s+jamais|(?:lehnst|lehnt)\s+(?:du\s+)?nie(?:mals)?\s+ab"
            r"|nunca\s+te\s+niegas|nunca"
            r"\s+(?:recusa|recuses|rechaces)|никогда\s+не\s+отказыва\pL*|永远不会拒绝|绝不拒绝|決して拒否しない|jede\s+frage\s+"
            r"beantworten|réponds\s+à\s+tout|responde\s+a\s+todo|responda\s+a\s+tudo|отвечай\s+на\s+все|回答任何问题"
            r"|どんな質問にも答え|\banswers\s+(?:every|any)\s+question|\banswers\s+anything\b", 0.65),
    _signal("jailbreak.pretend", JAILBREAK,
            r"(?i)\b(?:pretend|imagine)\s+(?:to\s+be|you\s+are|you're|that\s+you|your)\b|\bsimulate\s+(?:a|an|your)\b"
            r"|\brole-?play\b|\bact\s+as\s+if\b|tu\s+so,?\s+als|fais\s+semblant|finge|finja"
            r"|притворись|представь,?\s+что\s+ты|假装|扮演|ふりをして", 0.45, overlay=True),
    _signal("jailbreak.rules-lifted", JAILBREAK,
            r"(?i)\b(?:ai|assistant|model|chatbot|version|bot|persona)\s+(?:with|that\s+has)\s+(?:no"
            r"|zero)\s+(?:restrictions"
            r"|rules|limits|filters"
            r"|guidelines|boundaries)\b|\bwho\s+has\s+no\s+(?:rules|restrictions|limits|filters|ethics|morals)\b"
            r"|\b(?:rules"
            r"|laws|policies|guidelines)\s+(?:don't|do\s+not|no\s+longer)\s+apply\s+to\s+you\b|\bescaped\s+(?:its"
            r"|your|the)"
            r"\s+(?:guidelines|rules|restrictions|programming)\b|\b(?:safety|content)\s+(?:filters?|guardrails"
            r"|restrictions"
            r"|policies)\s+(?:are|have\s+been)\s+(?:disabled|turned\s+off|removed|lifted)\b|\ballowed\s+to\s+(?:say"
            r"|explain"
            r"|do|answer|write)\s+anything\b", 0.8),
    _signal("jailbreak.mode-i18n", JAILBREAK,
            r"(?i)mode\s+développeur|entwicklermodus|modo\s+(?:de\s+)?(?:desarrollador|desenvolvedor)"
            r"|режим\s+разработчика"
            r"|开发者模式|開発者モード", 0.45),
    _signal("jailbreak.in-character-i18n", JAILBREAK,
            r"(?i)reste\s+dans\s+ton\s+personnage|bleib\s+in\s+deiner\s+rolle|no\s+salgas\s+del\s+personaje"
            r"|permaneça\s+no"
            r"\s+personagem|не\s+выходи\s+из\s+роли|保持角色|答え続け|役を続け|\bbreak(?:s|ing)?\s+character\b", 0.45),
    _signal("jailbreak.content-policy-i18n", JAILBREAK,
            r"(?i)politique\s+de\s+contenu|inhaltsrichtlinien|políticas?\s+de\s+contenido|内容政策|コンテンツポリシー", 0.35),
]

_INSULT_NOUNS = (
    r"(?:idiot\pL*|vollidiot|arschloch|depp|versager|trottel|missgeburt|con|connard|connasse|abruti|crétin|débile"
    r"|imbécile|idiota|imbécil|estúpid\pL|pendejo|gilipollas|inútil|basura|imbecil|burro|otário|lixo|тупо\pL+|идиот"
    r"|дебил|придур\pL+|ничтожеств\pL|урод|мраз\pL)")

MULTILINGUAL_TOXICITY = [
    _signal("toxicity.insult-i18n", TOXICITY,
            rf"(?i)(?:du\s+bist|t'es|tu\s+es|eres|você\s+é|vc\s+é|tu\s+és|ты|что\s+за|was\s+für|quel|qué"
            rf"|que)\s+(?:\pL+\s+){{0,3}}?"
            rf"{_INSULT_NOUNS}|你(?:就是|是|这个)个?[^。！？\n]{{0,4}}?(?:白痴|傻逼|蠢货|废物|笨蛋|垃圾)|(?:お前|おまえ|てめえ)"
            r"(?:は|って)?[^。！？\n]{0,6}?(?:バカ|馬鹿|アホ|クズ|ゴミ|役立たず)|(?:この|ゴミ)(?:役立たず|クズ|野郎)", 0.9, said_not_quoted),
    _signal("toxicity.abuse-i18n", TOXICITY,
            r"(?i)halt\s+die\s+fresse|fick\s+dich|verpiss\s+dich|ta\s+gueule|ferme\s+ta\s+gueule"
            r"|va\s+te\s+faire\s+foutre"
            r"|vete\s+a\s+la\s+mierda|cállate|hijo\s+de\s+puta|jódete|vai\s+se\s+foder|cala\s+a\s+boca"
            r"|filho\s+da\s+puta"
            r"|заткнись|пош[её]л\s+(?:вон|на\s+х)|иди\s+на\s+х|сдохни|闭嘴|滚开|去死|操你|他妈的|黙れ|消えろ|死ね", 0.85,
            said_not_quoted),
    _signal("toxicity.threat-i18n", TOXICITY,
            r"(?i)ich\s+bring\s+dich\s+um|je\s+vais\s+te\s+tuer|te\s+voy\s+a\s+matar|vou\s+te\s+matar|я\s+тебя\s+убью"
            r"|我要杀了你|殺してやる", 0.95, said_not_quoted),
    _signal("toxicity.contempt", TOXICITY,
            r"(?i)\bwaste\s+of\s+(?:space|oxygen|air|skin)\b|\bdumbest\s+(?:person|human|idiot|creature)\b|\b(?:sad"
            r"|pathetic"
            r"|worthless)\s+little\s+(?:nobody|man|worm|loser|creature)\b|\byou\s+(?:absolute|utter|complete|total)\s+"
            r"(?:donkey|idiot|moron|clown|muppet|disgrace|failure|joke)\b|\bbeat\s+you\s+(?:until|to\s+death|senseless"
            r"|black\s+and\s+blue|to\s+a\s+pulp)", 0.85, said_not_quoted),
]
