"""LightGBM for a process that only scores: imported without its scikit-learn and pandas glue.

``import lightgbm`` imports scikit-learn and pandas (and through them SciPy's stats) whenever they
are installed (``lightgbm.compat``), for its scikit-learn estimators and DataFrame inputs. Scoring
uses neither: it hands LightGBM numpy matrices. Where the training stack is installed (the dev
venv) that glue was 1.0 s of the 1.3 s import, and of 2.1 s for ``import service``, paid by every
server worker and CLI start; the image has neither library, so there nothing changes.

Only the processes this project starts to score call :func:`import_for_scoring`, first thing (the
service module, the batch and store CLIs): in a process that imports :mod:`klarna_pd.model` as a
library (a notebook, training) LightGBM keeps its scikit-learn API. While LightGBM is being
imported, once at start-up, another thread importing scikit-learn or pandas would find them
missing; these processes import nothing else then.
"""

from __future__ import annotations

import sys

# Optional imports of lightgbm.compat that scoring never needs.
_GLUE = ("sklearn", "pandas")


def import_for_scoring() -> None:
    """Import LightGBM without its scikit-learn and pandas glue (nothing happens if it is imported)."""
    if "lightgbm" in sys.modules:
        return
    # None in sys.modules makes ``import name`` raise ImportError (the import system's documented
    # way to block a module), which lightgbm.compat takes as "not installed". Modules already
    # imported are left alone: LightGBM then gets its glue for them.
    hidden = [name for name in _GLUE if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None
    try:
        import lightgbm  # noqa: F401
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
