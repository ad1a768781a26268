"""Running dcar past one process: DDP training under torchrun (:mod:`.ddp`), embedding on Ray Data
(:mod:`.ray_embed`), and the pieces large indexes are built from (:mod:`.large_index`)."""
