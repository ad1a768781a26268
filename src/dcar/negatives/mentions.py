"""Finding and replacing mentions of a class name inside a caption.

Class names arrive in dataset spelling (``passion_flower``, ``black-eyed_susan``) while captions
spell them as prose (``passion flower``, ``Black-eyed Susans``) and sometimes verbatim
(``This is a orange_dahlia.``). A mention therefore matches the name's words joined by any mix of
spaces, underscores or hyphens, in any case, optionally plural, and never inside a longer word
(``rose`` does not match ``desert-rose`` or ``roses-like``). Replacements keep the matched text's
capitalisation and number and fix a preceding indefinite article (``a oxeye daisy`` ->
``an oxeye daisy``).
"""

from __future__ import annotations

import re
from functools import lru_cache

_SEPARATOR = r"[\s_\-]+"
_VOWELS = "aeiouAEIOU"


def display_name(category: str) -> str:
    """The prose spelling of a class name: underscores become spaces, whitespace collapsed."""
    return " ".join(category.replace("_", " ").split())


def _words(category: str) -> list[str]:
    return [w for w in re.split(r"[\s_\-]+", category.strip()) if w]


def _plural_suffix(word: str) -> str:
    """Regex for the optional plural ending of ``word`` (``lily`` -> ``lil(y|ies)``)."""
    if len(word) > 1 and word[-1] in "yY" and word[-2] not in _VOWELS:
        return re.escape(word[:-1]) + r"(?:y|(?P<ies>ies))"
    if re.search(r"(s|x|z|ch|sh)$", word, flags=re.IGNORECASE):
        return re.escape(word) + r"(?P<es>es)?"
    return re.escape(word) + r"(?P<s>s|es)?"


@lru_cache(maxsize=4096)
def mention_pattern(category: str) -> re.Pattern[str]:
    """Compiled pattern matching every mention of ``category`` (with an optional article before it)."""
    words = _words(category)
    if not words:
        raise ValueError("empty class name")
    body = _SEPARATOR.join([re.escape(w) for w in words[:-1]] + [_plural_suffix(words[-1])])
    return re.compile(
        r"(?P<article>(?<![\w\-])(?:a|an)\s+)?(?<![\w\-])(?P<name>" + body + r")(?![\w\-])",
        flags=re.IGNORECASE,
    )


def mentions(text: str, category: str) -> int:
    """How many times ``text`` mentions ``category``."""
    return sum(1 for _ in mention_pattern(category).finditer(text))


def pluralize(name: str) -> str:
    """English plural of the last word of ``name`` (good enough for class names)."""
    head, _, last = name.rpartition(" ")
    if len(last) > 1 and last[-1] in "yY" and last[-2] not in _VOWELS:
        last = last[:-1] + "ies"
    elif re.search(r"(s|x|z|ch|sh)$", last, flags=re.IGNORECASE):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def _match_case(template: str, replacement: str) -> str:
    """Give ``replacement`` the capitalisation style of the matched ``template``."""
    letters = [c for c in template if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return replacement.upper()
    words = template.split()
    if len(words) > 1 and all(w[:1].isupper() for w in words):
        return " ".join(w[:1].upper() + w[1:] for w in replacement.split())
    if template[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def indefinite_article(word: str) -> str:
    """``a`` or ``an`` by the first letter (the usual written rule; no pronunciation lexicon)."""
    return "an" if word[:1] in _VOWELS else "a"


def replace_mentions(text: str, category: str, new_category: str) -> tuple[str, int]:
    """Replace every mention of ``category`` in ``text`` by ``new_category``.

    Returns the new text and the number of replacements. The new name is written in prose
    spelling, plural where the mention was plural, capitalised like the mention.
    """
    new_name = display_name(new_category)

    def substitute(m: re.Match[str]) -> str:
        plural = any(m.group(g) for g in ("s", "es", "ies") if g in m.re.groupindex)
        name = pluralize(new_name) if plural else new_name
        name = _match_case(m.group("name"), name)
        article = m.group("article")
        if article and not plural:
            word = indefinite_article(name)
            word = word.capitalize() if article[:1].isupper() else word
            article = word + article[len(article.rstrip()):]  # keep the original spacing
        return (article or "") + name

    return mention_pattern(category).subn(substitute, text)
