"""Running dcar past one process: DDP training under torchrun (:mod:`.ddp`, :mod:`.collective`)
and embedding on Ray Data (:mod:`.ray_embed`). Large FAISS indexes and the Qdrant backend live
with the index (:mod:`dcar.index.large`, :mod:`dcar.index.qdrant`); see docs/scale.md."""
