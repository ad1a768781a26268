"""dcar: dual prompt learning with category-attribute reweighting for CLIP image-text retrieval."""

__version__ = "0.1.0"
