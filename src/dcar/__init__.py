"""dcar: dual prompt learning with category-attribute reweighting for CLIP image-text retrieval."""

__version__ = "0.1.0"

__all__ = ["__version__", "load", "Encoder"]


def __getattr__(name: str):
    # `dcar.load` / `dcar.Encoder` live in dcar.api; imported on first use so that `import dcar`
    # stays light (no torch) for tools that only need the version.
    if name in ("load", "Encoder"):
        from dcar import api

        return getattr(api, name)
    raise AttributeError(f"module 'dcar' has no attribute {name!r}")
