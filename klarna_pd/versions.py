"""Versions of the libraries a model was trained or is served with (recorded, and shown on /metadata)."""

from __future__ import annotations

import platform
from importlib import metadata as importlib_metadata

_LIBRARIES = ("klarna-pd", "lightgbm", "numpy", "pandas", "pyarrow", "scikit-learn", "bentoml", "pydantic")


def library_versions() -> dict[str, str]:
    """Python's and each library's version (``not installed`` where absent, e.g. pandas in the server)."""
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
