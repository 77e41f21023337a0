"""LightGBM as scoring imports it: without the scikit-learn and pandas glue.

``import lightgbm`` imports scikit-learn and pandas (and through them SciPy's stats) whenever they
are installed (``lightgbm.compat``), for its scikit-learn estimators and DataFrame inputs. Scoring
uses neither: it hands LightGBM numpy matrices. In the dev venv that glue was 1.0 s of the 1.3 s
import (and of 2.1 s for ``import service``), paid by every server worker and every CLI start; the
image has neither library, so there the import is already the short one.

The training stack imports LightGBM itself first (as :mod:`klarna_pd.training.cv` does), so where
scikit-learn is used LightGBM keeps its usual import order and glue; once LightGBM is imported,
this module changes nothing.
"""

from __future__ import annotations

import sys

# Optional imports of lightgbm.compat that scoring never needs.
_GLUE = ("sklearn", "pandas")


def _import_lightgbm():
    # None in sys.modules makes ``import name`` raise ImportError (the import system's documented
    # way to block a module), which lightgbm.compat takes as "not installed".
    hidden = [name for name in _GLUE if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None
    try:
        import lightgbm
    finally:
        for name in hidden:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]
    return lightgbm


lgb = _import_lightgbm()
