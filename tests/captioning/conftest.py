"""Fixtures for the caption-builder tests: a live chat-completions server and tiny images."""

from __future__ import annotations

from pathlib import Path

import pytest
from chat_server import COLOURS, ChatServer
from PIL import Image

from dcar.data.records import Entry


@pytest.fixture
def chat_server():
    server = ChatServer()
    yield server
    server.close()


@pytest.fixture
def flower_entries(tmp_path: Path) -> list[Entry]:
    """Eight tiny distinct images (one colour each), two classes."""
    entries = []
    for i, (name, rgb) in enumerate(COLOURS.items()):
        path = tmp_path / "images" / f"img_{i}.jpg"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (24, 16), rgb).save(path)
        category = "sunflower" if i % 2 else "tiger_lily"
        entries.append(Entry(key=f"{category}_image_{i:05d}", caption="", category=category, image=str(path)))
    return entries
