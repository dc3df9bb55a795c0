"""Classification metrics from one confusion matrix: accuracy, mean per-class accuracy, macro-F1 (+ top-5 from logits).

The confusion matrix is computed once per evaluation and every metric is read off it. Computed with numpy rather
than sklearn to keep sklearn's import off every training job's start-up; tests/test_train.py checks them against
sklearn's ``f1_score`` and ``balanced_accuracy_score``.
"""

from __future__ import annotations

import numpy as np


def confusion(labels: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``cm[true, predicted]`` counts."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels), np.asarray(pred)), 1)
    return cm


def macro_f1(cm: np.ndarray) -> float:
    """Unweighted mean of per-class F1 over all classes (a class never predicted nor present scores 0), as
    sklearn's ``f1_score(average="macro", labels=all, zero_division=0)``."""
    tp = np.diag(cm).astype(float)
    denom = cm.sum(0) + cm.sum(1)  # predicted + true = 2TP + FP + FN
    return float(np.mean(np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)))


def mean_class_accuracy(cm: np.ndarray) -> float:
    """Mean over the classes present of each class's accuracy (recall): the average of the row-normalised confusion
    matrix's diagonal — the official metric of FGVC-Aircraft and Flowers-102."""
    rows = cm.sum(1)
    present = rows > 0
    return float(np.mean(np.diag(cm)[present] / rows[present]))


def classification_metrics(logits, labels, num_classes: int) -> tuple[dict, np.ndarray]:
    """(metrics, confusion matrix) for float logits ``[N, K]`` and integer labels ``[N]`` (torch tensors)."""
    y = labels.numpy()
    cm = confusion(y, logits.argmax(1).numpy(), num_classes)
    out = {
        "accuracy": float(np.trace(cm) / max(1, cm.sum())),
        "mean_class_accuracy": mean_class_accuracy(cm),
        "macro_f1": macro_f1(cm),
    }
    if num_classes >= 5:
        top5 = logits.topk(5, dim=1).indices.numpy()
        out["top5"] = float((top5 == y[:, None]).any(1).mean())
    return out, cm
