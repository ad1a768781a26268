"""Hard siblings by text embedding, with the lexical fallback."""

from __future__ import annotations

import json

import open_clip
import torch
from safetensors.torch import save_file

from dcar.negatives import EmbeddingRanker, LexicalRanker, make_generator


class FakeEncoder:
    """Embeds a name by a fixed table (what a backbone that knows the names would do)."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.texts: list[str] = []

    def tokenize(self, texts, prompt_length=0):
        self.texts += texts
        return torch.arange(len(self.texts) - len(texts), len(self.texts))

    def encode_text(self, ids, prompts=None, token_weights=None, normalize=False):
        rows = []
        for i in ids.tolist():
            name = self.texts[i].removeprefix("a photo of a ").removesuffix(".")
            rows.append(self.table.get(name, [1.0, 1.0, 1.0]))
        f = torch.tensor(rows)
        return torch.nn.functional.normalize(f, dim=-1) if normalize else f


def test_embedding_order_beats_spelling():
    # semantically, a sunflower is closer to a daisy than to a "sun lily", whatever the letters say
    table = {"sunflower": [1, 0.1, 0], "oxeye daisy": [1, 0.2, 0], "sun lily": [0, 1, 0], "rose": [0, 0, 1]}
    ranker = EmbeddingRanker(["sunflower", "oxeye_daisy", "sun_lily", "rose"], FakeEncoder(table))
    assert ranker("sunflower") == ["oxeye_daisy", "sun_lily", "rose"]
    assert LexicalRanker(["sunflower", "oxeye_daisy", "sun_lily", "rose"])("sunflower")[0] == "sun_lily"
    assert not ranker.fallbacks


def test_names_the_model_cannot_tell_apart_fall_back_to_lexical():
    cats = ["tree_poppy", "corn_poppy", "rose"]
    ranker = EmbeddingRanker(cats, FakeEncoder({}))  # every name maps to the same point
    assert ranker("tree_poppy") == LexicalRanker(cats)("tree_poppy")
    assert ranker.fallbacks == {"tree_poppy"}
    assert ranker("unknown_class")  # a class outside the table is ranked lexically, not an error


def _tiny_open_clip_dir(folder, cfg) -> str:
    torch.manual_seed(0)
    model = open_clip.model.CLIP(**cfg)
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg}))
    save_file({k: v.contiguous().clone() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return f"open_clip:local-dir:{folder}"


def test_generator_with_a_backbone_spec(tmp_path, tiny_open_clip_cfg):
    spec = _tiny_open_clip_dir(tmp_path / "tiny", tiny_open_clip_cfg)
    cats = ["tree_poppy", "corn_poppy", "rose", "sunflower", "tiger_lily"]
    gen = make_generator(cats, k=2, strategy="swap", model=spec)
    ranker = gen.sibling_fn
    assert isinstance(ranker, EmbeddingRanker) and ranker.similarity.shape == (5, 5)
    assert torch.allclose(ranker.similarity.diagonal(), torch.ones(5), atol=1e-5)
    negs = gen.generate("This is a rose.", "rose")
    assert len(negs) == 2 and {n.swapped_to for n in negs} <= set(ranker("rose")[: gen.pool_size])
