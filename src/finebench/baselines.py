"""Non-neural reference points on a prepared text task, so a reader can judge the neural rows:
majority class, and TF-IDF (word 1-2 grams) + logistic regression with C chosen on the val split.

    python -m finebench baseline results/data/wordnet
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from finebench.data.text import read_texts
from finebench.errors import FinebenchError


def text_baselines(prepared_dir: str | Path) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    prepared_dir = Path(prepared_dir)
    if not (prepared_dir / "train_text.jsonl").is_file():
        raise FinebenchError(f"{prepared_dir}: no train_text.jsonl — baselines need a prepared text task")
    (xtr, ytr), (xva, yva), (xte, yte) = (read_texts(prepared_dir, s) for s in ("train", "val", "test"))
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    tr, va, te = vec.fit_transform(xtr), vec.transform(xva), vec.transform(xte)  # fitted on train only
    best = max(
        ((c, LogisticRegression(C=c, max_iter=2000).fit(tr, ytr)) for c in (0.3, 1.0, 3.0, 10.0, 30.0)),
        key=lambda cm: (cm[1].predict(va) == np.asarray(yva)).mean(),
    )
    pred = best[1].predict(te)
    majority = np.bincount(ytr).argmax()
    return {
        "majority_test_accuracy": float((np.asarray(yte) == majority).mean()),
        "tfidf_logreg_test_accuracy": float((pred == np.asarray(yte)).mean()),
        "tfidf_logreg_test_macro_f1": float(f1_score(yte, pred, average="macro")),
        "tfidf_logreg_C": best[0],
    }
