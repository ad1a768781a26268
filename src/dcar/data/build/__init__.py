"""Building FDRD-style captions for a user's labelled images (``dcar data build``).

``CaptionBuilder(load_captioner(spec), BuildOptions(...), AnswerCache(path)).build(entries)``
returns captioned entries and a report; negatives come from :mod:`dcar.negatives`.
"""

from dcar.data.build.builder import BuildOptions, BuildReport, CaptionBuilder
from dcar.data.build.cache import AnswerCache
from dcar.data.build.captioners.base import CaptionItem, Captioner, available, load_captioner, register
from dcar.data.build.errors import CaptionError, FatalCaptionerError, PermanentError, TransientError
from dcar.data.build.prompts import DEFAULT_PREFIX, DEFAULT_PROMPTS, VERIFY_PROMPT
from dcar.data.build.retry import RetryPolicy
from dcar.data.build.truncate import count_tokens, truncate_caption
from dcar.data.build.verify import Verifier

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
    "count_tokens",
    "load_captioner",
    "register",
    "truncate_caption",
]
