"""Word lists as one regular expression shaped like a trie.

A list of a hundred words written as a trie (`fu(?:ck(?:ing|er)?)|sh(?:it)`) shares prefixes: the automaton RE2
builds from it stays small (one state per prefix rather than per word and letter), which keeps a policy's
combined pattern within its memory budget.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

Atom = Callable[[str], str]


def _build(words: Iterable[str]) -> dict:
    root: dict = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return root


def _render(node: dict, atom: Atom, sep: str) -> str:
    branches = []
    for char in sorted(k for k in node if k):
        child = node[char]
        rest = [k for k in child if k]
        if not rest:
            branches.append(atom(char))
        elif "" in child:
            branches.append(f"{atom(char)}(?:{sep}{_render(child, atom, sep)})?")
        else:
            branches.append(f"{atom(char)}{sep}{_render(child, atom, sep)}")
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


def trie_regex(words: Iterable[str], atom: Atom = re.escape, sep: str = "") -> str:
    """A regex matching exactly the given words (no anchors); `atom` renders one character, `sep` goes between
    characters (for obfuscation such as "f.u.c.k")."""
    words = [w for w in words if w]
    if not words:
        raise ValueError("trie_regex needs at least one word")
    return _render(_build(words), atom, sep)
