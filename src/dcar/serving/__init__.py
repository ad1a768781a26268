"""The retrieval service: a FastAPI app (JSON API + web page) over one catalog index, with the
limits on what clients may send. `dcar serve` runs it with uvicorn on 127.0.0.1."""

from dcar.serving.limits import Limits

__all__ = ["Limits", "create_app"]


def create_app(index, encoder, limits: Limits | None = None):
    """See :func:`dcar.serving.app.create_app` (imported on use: FastAPI is an optional extra)."""
    try:
        from dcar.serving.app import create_app as make
    except ImportError as err:
        from dcar.errors import DcarError

        raise DcarError(f'the service needs the serve extra ({err.name} is missing): pip install "dcar[serve]"') from None
    return make(index, encoder, limits)
