"""The classification objective: cross-entropy, the metrics of one confusion matrix, the confusion matrix and the
per-example test predictions saved."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from finebench.errors import FinebenchError
from finebench.tasks.classification.metrics import classification_metrics
from finebench.tasks.objective import Objective

PREDICTIONS = "predictions.csv"  # per run: one row per test example (Classification.final)


class Classification(Objective):
    """Cross-entropy; accuracy / mean class accuracy / macro-F1 / top-5; the best epoch maximises val accuracy
    (ties: lower val loss); the test confusion matrix and ``predictions.csv`` are saved: one row per test example in
    the prepared test order (``index``, ``label``, ``prediction`` — class indices, the names are confusion.csv's —,
    ``correct`` 0/1, ``log_p_label`` the log-probability of the true label), the per-example scores of the
    report's intervals over seeds and test examples and its paired tests (finebench.stats)."""

    name = "classification"

    def loss(self, out, y, t: dict):
        import torch.nn.functional as F

        return F.cross_entropy(out.float(), y, label_smoothing=t["label_smoothing"])

    def evaluate(self, model, loader, autocast, num_classes: int) -> dict:
        import torch
        import torch.nn.functional as F

        model.eval()
        loss_sum, logit_batches, label_batches = 0.0, [], []
        with torch.no_grad():
            for x, y in loader:
                with autocast():
                    out = model(x)
                out = out.float()
                loss_sum += F.cross_entropy(out, y, reduction="sum").item()
                logit_batches.append(out.cpu())
                label_batches.append(y.cpu())
        logits, labels = torch.cat(logit_batches), torch.cat(label_batches)
        metrics, cm = classification_metrics(logits, labels, num_classes)
        log_p = F.log_softmax(logits, dim=1).gather(1, labels[:, None].long())[:, 0]
        return {"loss": loss_sum / len(labels), **metrics, "confusion": cm, "labels": labels,
                "predictions": logits.argmax(1), "log_p_label": log_p}

    def selection_key(self, ev: dict) -> tuple:
        return (ev["accuracy"], -ev["loss"])

    def epoch_fields(self, ev: dict) -> dict:
        return {"val_loss": ev["loss"], "val_accuracy": ev["accuracy"], "val_macro_f1": ev["macro_f1"]}

    def best_fields(self, key: tuple) -> dict:
        return {"best_val_accuracy": key[0]}

    def headline(self, result: dict) -> str:
        return f"test_accuracy {result['test_accuracy']:.4f}"

    def final(self, ev: dict, data, out_dir: Path, title: str, more: dict) -> dict:
        import pandas as pd

        from finebench.plots import confusion_svg

        if more:
            raise FinebenchError(f"{title}: more test sets ({', '.join(more)}) are not supported for classification")

        cm = ev["confusion"]
        y, pred = ev["labels"].numpy(), ev["predictions"].numpy()
        pd.DataFrame({"index": np.arange(len(y)), "label": y, "prediction": pred, "correct": (y == pred).astype(int),
                      "log_p_label": ev["log_p_label"].numpy()}).to_csv(out_dir / PREDICTIONS, index=False,
                                                                       float_format="%.6g")
        pd.DataFrame(cm, index=pd.Index(data.classes, name="true"),
                     columns=data.classes).to_csv(out_dir / "confusion.csv")
        confusion_svg(cm, data.classes, out_dir / "confusion.svg",
                      f"{title} — test confusion (acc {ev['accuracy']:.3f})")
        counts = cm.sum(1)
        return {
            "test_accuracy": ev["accuracy"],
            "test_mean_class_accuracy": ev["mean_class_accuracy"],
            "test_macro_f1": ev["macro_f1"],
            "test_top5": ev.get("top5"),
            "test_loss": ev["loss"],
            "chance_accuracy": 1.0 / data.num_classes,
            "majority_accuracy": float(counts.max() / counts.sum()),
            "n_test": int(counts.sum()),
        }
