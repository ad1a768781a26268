"""Building FDRD-style captions for a user's labelled images (``dcar data build``).

``CaptionBuilder(load_captioner(spec), BuildOptions(...), AnswerCache(path)).build(entries)``
returns captioned entries and a report; negatives come from :mod:`dcar.negatives`.
"""

from dcar.captioning.builder import BuildOptions, BuildReport, CaptionBuilder
from dcar.captioning.answer_cache import AnswerCache
from dcar.captioning.captioners.base import CaptionItem, Captioner, available, load_captioner, register
from dcar.captioning.failures import CaptionError, FatalCaptionerError, PermanentError, TransientError
from dcar.captioning.questions import DEFAULT_PREFIX, DEFAULT_PROMPTS, VERIFY_PROMPT
from dcar.captioning.retry import RetryPolicy
from dcar.captioning.truncate import truncate_caption
from dcar.captioning.verify import Verifier

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_PROMPTS",
    "VERIFY_PROMPT",
    "AnswerCache",
    "BuildOptions",
    "BuildReport",
    "CaptionBuilder",
    "CaptionError",
    "CaptionItem",
    "Captioner",
    "FatalCaptionerError",
    "PermanentError",
    "RetryPolicy",
    "TransientError",
    "Verifier",
    "available",
    "load_captioner",
    "register",
    "truncate_caption",
]
