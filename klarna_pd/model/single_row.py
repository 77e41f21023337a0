"""One row's raw score through LightGBM's fast single-row C API.

``Booster.predict`` on one row spends most of its ~20 us in Python: argument checks, array
conversion, a new prediction context per call. LightGBM's C API has a path made for exactly this
case, ``LGBM_BoosterPredictForMatSingleRowFastInit`` (once) and ``...SingleRowFast`` (per row),
which keeps the prediction context between calls. The Python package does not wrap it, so it is
called through the package's own loaded library (``lightgbm.libpath._LIB``) on the booster's
handle (``Booster._handle``): private names of the package over a public C API, pinned by
requirements and checked by a parity test (tests/unit/test_single_row.py: the same margin, bit for
bit, as ``Booster.predict``). If either name disappears, :func:`make` returns None and callers use
``Booster.predict``.

A fast config holds buffers, so each thread gets its own, and so does the row: each call copies
the row into the thread's input buffer, whose pointer was made once. A pointer made per call
(``row.ctypes.data_as``) is a ctypes object in a reference cycle (ctypes' ``cast``, CPython
bpo-12836) that only the garbage collector frees: at 2,000 one-applicant requests a second they
piled up into a collection of ~50,000 objects every ~11 s, a 55-60 ms pause of the worker each
time (seen in the soak benchmark's p99).
"""

from __future__ import annotations

import ctypes
import threading

import lightgbm as lgb
import numpy as np

_RAW_SCORE = 1  # C_API_PREDICT_RAW_SCORE
_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class SingleRowPredictor:
    """Raw margins of single rows of a booster (``num_threads=1``)."""

    def __init__(self, booster: lgb.Booster, lib: ctypes.CDLL) -> None:
        self._booster = booster  # keeps the handle alive as long as this predictor
        self._handle = booster._handle
        self._lib = lib
        self._ncol = booster.num_feature()
        self._local = threading.local()

    def _config(self) -> ctypes.c_void_p:
        config = getattr(self._local, "config", None)
        if config is None:
            config = ctypes.c_void_p()
            err = self._lib.LGBM_BoosterPredictForMatSingleRowFastInit(
                self._handle, ctypes.c_int(_RAW_SCORE), ctypes.c_int(0), ctypes.c_int(-1), ctypes.c_int(_FLOAT64),
                ctypes.c_int32(self._ncol), ctypes.c_char_p(b"num_threads=1"), ctypes.byref(config))
            if err != 0:
                raise RuntimeError(self._lib.LGBM_GetLastError().decode())
            self._local.config = config
            self._local.row = np.empty(self._ncol, dtype=np.float64)
            self._local.row_ptr = self._local.row.ctypes.data_as(ctypes.c_void_p)
            self._local.out = np.empty(1, dtype=np.float64)
            self._local.out_ptr = self._local.out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
            self._local.out_len = ctypes.c_int64(0)
        return config

    def margin(self, row: np.ndarray) -> float:
        """The raw margin of one encoded row (``n_features`` numbers)."""
        config = self._config()
        local = self._local
        local.row[:] = row  # a ValueError for a row of another length
        err = self._lib.LGBM_BoosterPredictForMatSingleRowFast(
            config, local.row_ptr, ctypes.byref(local.out_len), local.out_ptr)
        if err != 0:
            raise RuntimeError(self._lib.LGBM_GetLastError().decode())
        return float(local.out[0])


def make(booster: lgb.Booster) -> SingleRowPredictor | None:
    """A single-row predictor for ``booster``, or None where this LightGBM cannot give one."""
    try:
        from lightgbm.libpath import _LIB as lib

        lib.LGBM_GetLastError.restype = ctypes.c_char_p
        if not isinstance(getattr(booster, "_handle", None), ctypes.c_void_p):
            return None
        predictor = SingleRowPredictor(booster, lib)
        predictor.margin(np.zeros(booster.num_feature()))
        return predictor
    except (ImportError, AttributeError, RuntimeError):
        return None
