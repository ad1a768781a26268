"""The human review queue: matches in a policy's review band wait for a person's decision.

- :mod:`~dcar.review.queue`: the durable queue (SQLite in WAL mode, one decision per item);
- :mod:`~dcar.review.export`: reviewed decisions as training data (FDRD), Label Studio tasks or JSON lines.
"""

from dcar.review.queue import QUEUE_FILE, ReviewQueue

__all__ = ["QUEUE_FILE", "ReviewQueue"]
