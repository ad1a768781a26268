"""A procedural fine-grained world (numpy + Pillow), deterministic from (seed, domain, split, index).

Main entry points (see docs/world/README.md):

- :func:`make_sample` -> a structured :class:`Sample`; :func:`render` -> its image;
  :func:`caption` -> its FDRD-style caption; :func:`negative_captions` -> hard negatives;
- :func:`materialise` -> a domain split written as FDRD JSON + images + taxonomy;
- :data:`DOMAINS` / :func:`get_domain` -> the pretraining corpus and the downstream catalogs.

The evaluation that checks a model against the world lives in :mod:`dcar.world.diagnose` (it needs
torch and open_clip, so it is not imported here).
"""

from dcar.world.captions import caption
from dcar.world.domains import DOMAINS, PRETRAIN, downstream_domains, get_domain
from dcar.world.export import MaterialisedSplit, materialise
from dcar.world.structural_negatives import negative_captions
from dcar.world.render import render
from dcar.world.sample import Sample, make_sample

__all__ = [
    "DOMAINS", "PRETRAIN", "MaterialisedSplit", "Sample", "caption", "downstream_domains", "get_domain",
    "make_sample", "materialise", "negative_captions", "render",
]
