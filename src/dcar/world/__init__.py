"""A procedural fine-grained world (numpy + Pillow), deterministic from a seed."""
