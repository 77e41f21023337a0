"""A faithful synthetic stand-in for the Klarna case-study file, with a known true PD.

``python -m klarna_pd.synth --rows 99976 --out data/dataset.csv --seed 0 [--truth FILE]``
"""

from .dataset import generate, iter_synthetic, write_synthetic
from .truth import expected_auc, true_pd

__all__ = ["generate", "iter_synthetic", "write_synthetic", "true_pd", "expected_auc"]
