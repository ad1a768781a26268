"""Child process for the kill -9 test: enqueue and decide items, printing each id once committed."""

import sys

from dcar.errors import DcarError
from dcar.review import ReviewQueue

queue = ReviewQueue(sys.argv[1])
start, stop = int(sys.argv[2]), int(sys.argv[3])
for i in range(start, stop):
    item = queue.enqueue(f"req-{i}", "i2t", f"/img/{i}.png", "image", [{"match": f"caption {i}", "similarity": 0.5}], 0.1)
    try:
        queue.decide(item, "accept" if i % 3 else "correct", "writer", label=None if i % 3 else f"fixed {i}")
    except DcarError:  # a retry of a decision that was committed just before the kill
        assert queue.get(item).reviewer == "writer"
    print(i, flush=True)
