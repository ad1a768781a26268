"""The catalog index: a catalog's image and caption features in shards, Parquet metadata, and a
vector index (FAISS by default) behind a small backend interface; built, extended and searched
by `dcar index build`, `dcar index add`, `dcar search` and `dcar serve`."""

from dcar.index.catalog import Catalog, CatalogItem, read_catalog
from dcar.index.store import Index, JobReport

__all__ = ["Catalog", "CatalogItem", "Index", "JobReport", "read_catalog"]
