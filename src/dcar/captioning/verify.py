"""Second-opinion check of a caption by another vision-language model.

FDRD's authors had a second multimodal model check each caption. We ask the verifier whether the
caption matches the image and is consistent with the labelled class, and keep the caption only on
a clear "yes": an answer that is neither yes nor no counts as a rejection (``unclear``), since the
check exists to filter noise.
"""

from __future__ import annotations

import re

from dcar.captioning.captioners.base import CaptionItem, Captioner
from dcar.captioning.questions import VERIFY_PROMPT, fill
from dcar.errors import DcarError

_VERDICT = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def parse_verdict(answer: str) -> str:
    """``yes``, ``no`` or ``unclear``: the first yes/no word of the answer decides."""
    m = _VERDICT.search(answer or "")
    return m.group(1).lower() if m else "unclear"


class Verifier:
    def __init__(self, captioner: Captioner, question: str = VERIFY_PROMPT) -> None:
        if not captioner.can_verify:
            raise DcarError(f"--verify {captioner.spec}: this captioner cannot answer questions about images")
        try:
            fill(question, "x", caption="y")  # a malformed template fails now, not per image
        except ValueError as err:
            raise DcarError(f"verification prompt: {err}") from None
        self.captioner = captioner
        self.question = question

    def identity(self) -> str:
        return "verify:" + self.captioner.identity()

    def question_for(self, item: CaptionItem, caption: str) -> str:
        return fill(self.question, item.category, item.meta_category, caption=caption)
