"""The reference a user would otherwise have: Flask + waitress, one-row DataFrame, sklearn Pipeline.

    python benchmarks/reference_app.py --model klarna-pd:latest --port 5000

Per request it builds a one-row pandas DataFrame and calls ``Pipeline(OrdinalEncoder,
LGBMClassifier).predict_proba``. The classifier wraps the very trees of the served model (its
booster), so both servers do the same arithmetic; the pipeline is checked against the booster
before serving.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def sklearn_pipeline(model, sample: pd.DataFrame):
    """Pipeline(OrdinalEncoder on the categoricals, LGBMClassifier on the model's booster).

    The encoding step is fitted on ``sample`` (its categories are fixed to the model's levels).
    """
    import lightgbm as lgb
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

    enc = model.encoder
    names = enc.feature_names_
    cats = [n for n in names if n in enc.levels_]
    others = [n for n in names if n not in enc.levels_]
    ordinal = OrdinalEncoder(
        categories=[enc.levels_[c] for c in cats],
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
    )
    columns = ColumnTransformer([("cat", ordinal, cats), ("num", "passthrough", others)])
    order = [(cats + others).index(n) for n in names]
    clf = lgb.LGBMClassifier()
    # Adopt the trained booster instead of fitting: same trees as the service serves.
    clf._Booster = model.booster
    clf._n_features = clf._n_features_in = len(names)
    clf._objective = "binary"
    clf._n_classes = 2
    clf._classes = np.array([0, 1])
    clf.fitted_ = True
    columns.fit(sample[names].astype({c: object for c in cats}))
    pipe = Pipeline([("encode", columns), ("order", FunctionTransformer(lambda x: x[:, order])), ("model", clf)])
    return pipe


def create_app(model_tag: str):
    from flask import Flask, jsonify, request

    from klarna_pd.data.batch import Batch
    from klarna_pd.store.local import load_model
    from klarna_pd.synth import generate

    model = load_model(model_tag)
    sample, _ = generate(500, seed=5)
    # Levels the model does not know would stop the encoder's fit; they are "unknown" at predict.
    for c, levels in model.encoder.levels_.items():
        sample.loc[~sample[c].isin(levels), c] = None
    pipe = sklearn_pipeline(model, sample)
    names = model.encoder.feature_names_
    # Self-check: the pipeline reproduces the booster's probabilities.
    want = model.booster.predict(model.encoder.encode(Batch.from_frame(sample, model.spec)))
    got = pipe.predict_proba(sample[names])[:, 1]
    if not np.allclose(want, got, rtol=0, atol=1e-12):
        raise SystemExit(f"reference pipeline disagrees with the booster: {got} vs {want}")

    app = Flask("reference")

    @app.post("/estimate-default-probability")
    def estimate():
        body = request.get_json(force=True)
        frame = pd.DataFrame([body]).reindex(columns=names)
        p = float(pipe.predict_proba(frame)[0, 1])
        return jsonify({"default_probability": p, "status": "success"})

    @app.get("/healthz")
    def healthz():
        return "ok"

    return app


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="klarna-pd:latest")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    from waitress import serve

    serve(create_app(args.model), host="127.0.0.1", port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
