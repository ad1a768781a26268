"""Captions for labelled images: ask, cache, retry, clean, verify, truncate; in parallel.

The unit of work is one answer (image x question). Each finished answer is in the cache before
the next starts, so a killed run loses only answers in flight and a rerun asks nothing twice.
An image whose calls still fail after the retries is skipped and reported, never fatal; a run
stops early only when the captioner itself is unusable (bad key, unknown model) or when
``max_consecutive_failures`` images in a row fail (the server is down: better to say so than to
spend hours backing off).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from dcar.backbone.tokenizer import CLIP_CONTEXT_LENGTH
from dcar.captioning.answer_cache import AnswerCache, cache_key, file_digest
from dcar.captioning.captioners.base import CaptionItem, Captioner
from dcar.captioning.failures import CaptionError, FatalCaptionerError, PermanentError
from dcar.captioning.questions import DEFAULT_PREFIX, DEFAULT_PROMPTS, compose, fill
from dcar.captioning.retry import Retrier, RetryPolicy
from dcar.captioning.text import clean_answer, reject_reason
from dcar.captioning.truncate import truncate_caption
from dcar.captioning.verify import Verifier, parse_verdict
from dcar.data.records import Entry
from dcar.errors import DcarError


@dataclass
class BuildOptions:
    prompts: tuple[str, ...] = DEFAULT_PROMPTS
    prefix: str | None = DEFAULT_PREFIX  # "This is {a} {class}."; None or "" for none
    max_tokens: int = CLIP_CONTEXT_LENGTH  # the text encoder's context, start and end tokens included
    workers: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_consecutive_failures: int = 20
    progress: bool = True


@dataclass
class BuildReport:
    images: int = 0
    captioned: int = 0
    answers_new: int = 0  # answers obtained from the captioner in this run
    answers_cached: int = 0  # answers taken from the cache (finished by an earlier run)
    retries: int = 0
    failed: int = 0  # images skipped: calls failed after retries, or unreadable
    filtered: int = 0  # images skipped: no usable answer (empty, refusal, repetitive)
    rejected: int = 0  # images skipped: the verifier did not say yes
    truncated: int = 0
    dropped_answers: Counter = field(default_factory=Counter)  # reason -> answers dropped
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)
    cache_bad_lines: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, object]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("skipped", "dropped_answers")}
        out["dropped_answers"] = dict(self.dropped_answers)
        return out


@dataclass
class _Outcome:
    caption: str | None = None
    status: str = "ok"  # ok | failed | filtered | rejected | stopped
    reason: str = ""
    new: int = 0
    cached: int = 0
    truncated: bool = False
    dropped: Counter = field(default_factory=Counter)


class CaptionBuilder:
    """Builds one caption per entry with ``captioner`` (and optionally ``verifier``)."""

    def __init__(
        self,
        captioner: Captioner,
        options: BuildOptions | None = None,
        cache: AnswerCache | None = None,
        verifier: Verifier | None = None,
        sleep: Callable[[float], None] = time.sleep,
        console: Console | None = None,
    ) -> None:
        self.captioner = captioner
        self.options = options or BuildOptions()
        self.cache = cache if captioner.cacheable or verifier else None
        self.verifier = verifier
        self.retrier = Retrier(self.options.retry, sleep=sleep)
        self.console = console or Console(stderr=True)
        self._stop = threading.Event()

    # -- the run ------------------------------------------------------------------------------
    def build(self, entries: list[Entry]) -> tuple[list[Entry], BuildReport]:
        """Captioned copies of ``entries`` (input order, skipped ones left out) and the report."""
        start = time.monotonic()
        self._stop.clear()
        report = BuildReport(images=len(entries), cache_bad_lines=self.cache.bad_lines if self.cache is not None else 0)
        questions = self.captioner.questions(tuple(self.options.prompts))
        for q in questions:
            try:
                fill(q, "x", "y")  # a malformed prompt fails now, not once per image
            except ValueError as err:
                raise DcarError(f"prompt: {err}") from None
        results: dict[int, _Outcome] = {}
        consecutive = 0
        executor = ThreadPoolExecutor(max_workers=max(1, self.options.workers), thread_name_prefix="caption")
        try:
            with self._progress() as progress:
                task = progress.add_task("captioning", total=len(entries))
                pending: dict[Future, int] = {
                    executor.submit(self._caption_one, _item(e), questions): i for i, e in enumerate(entries)
                }
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        i = pending.pop(future)
                        outcome = results[i] = future.result()  # FatalCaptionerError propagates
                        consecutive = consecutive + 1 if outcome.status == "failed" else 0
                        progress.advance(task)
                    limit = self.options.max_consecutive_failures
                    if limit and consecutive >= limit:
                        self._stop.set()
                        raise DcarError(
                            f"stopped after {consecutive} images in a row failed (last: {outcome.reason}); "
                            "finished answers are cached, rerun to resume"
                        )
        except BaseException:
            self._stop.set()
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        executor.shutdown(wait=True)
        out = self._collect(entries, results, report)
        report.retries = self.retrier.retries
        report.seconds = time.monotonic() - start
        return out, report

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.options.progress,
        )

    @staticmethod
    def _collect(entries: list[Entry], results: dict[int, _Outcome], report: BuildReport) -> list[Entry]:
        out = []
        for i, entry in enumerate(entries):
            r = results[i]
            report.answers_new += r.new
            report.answers_cached += r.cached
            report.dropped_answers.update(r.dropped)
            if r.caption is None:
                setattr(report, r.status, getattr(report, r.status) + 1)
                report.skipped.append((entry.key, f"{r.status}: {r.reason}"))
                continue
            report.captioned += 1
            report.truncated += int(r.truncated)
            out.append(replace(entry, caption=r.caption))
        return out

    # -- one image ----------------------------------------------------------------------------
    def _caption_one(self, item: CaptionItem, questions: tuple[str, ...]) -> _Outcome:
        outcome = _Outcome()
        try:
            digest = self._digest(item)
            answers = []
            for question in questions:
                if self._stop.is_set():
                    return replace(outcome, status="failed", reason="run stopped")
                asked = fill(question, item.category, item.meta_category)  # {class}, {a}, {meta}
                answer, status = self._answer(item, asked, digest, outcome)
                if status == "ok":
                    answers.append(answer)
                else:
                    outcome.dropped[status] += 1
            if not answers:
                return replace(outcome, status="filtered", reason=", ".join(sorted(outcome.dropped)) or "no answer")
            caption, outcome.truncated = truncate_caption(
                compose(answers, item.category, self.options.prefix), self.options.max_tokens
            )
            if self.verifier is not None:
                verdict = self._verify(item, caption, digest, outcome)
                if verdict != "yes":
                    return replace(outcome, status="rejected", reason=f"verifier said {verdict}")
            outcome.caption = caption
            return outcome
        except FatalCaptionerError:
            self._stop.set()
            raise
        except CaptionError as err:
            return replace(outcome, status="failed", reason=str(err))
        except Exception as err:  # a captioner bug must not end the run: report it per image
            return replace(outcome, status="failed", reason=f"{type(err).__name__}: {err}")

    def _digest(self, item: CaptionItem) -> str:
        if self.cache is None or not (self.captioner.needs_image or self.verifier):
            return ""
        if item.image is None:
            raise PermanentError("no image file")
        try:
            return file_digest(item.image)
        except OSError as err:
            raise PermanentError(f"{item.image}: {err.strerror or err}") from None

    def _cached_call(self, key: str, call: Callable[[], str], outcome: _Outcome, item: CaptionItem) -> str:
        """The cached answer for ``key``, or the answer of ``call`` (retried), persisted before
        it is used. Filtered answers are cached too: the model would give them again."""
        assert self.cache is not None
        record = self.cache.get(key)
        if record is not None:
            outcome.cached += 1
            return str(record["answer"])
        answer = self.retrier(call)
        outcome.new += 1
        self.cache.put(key, entry=item.key, answer=answer)
        return answer

    def _answer(self, item: CaptionItem, question: str, digest: str, outcome: _Outcome) -> tuple[str, str]:
        use_cache = self.captioner.cacheable and self.cache is not None
        key = cache_key("answer", digest, self.captioner.identity(), question) if use_cache else ""

        def ask() -> str:
            return clean_answer(self.captioner.answer(item, question))

        if use_cache:
            answer = self._cached_call(key, ask, outcome, item)
        else:
            answer = self.retrier(ask)
            outcome.new += 1
        return answer, reject_reason(answer) or "ok"

    def _verify(self, item: CaptionItem, caption: str, digest: str, outcome: _Outcome) -> str:
        question = self.verifier.question_for(item, caption)
        key = cache_key("verify", digest, self.verifier.identity(), question)
        return parse_verdict(self._cached_call(key, lambda: self.verifier.captioner.answer(item, question), outcome, item))


def _item(entry: Entry) -> CaptionItem:
    return CaptionItem(
        key=entry.key,
        image=Path(entry.image) if entry.image else None,
        category=entry.category,
        meta_category=entry.meta_category,
        caption=entry.caption,
    )
