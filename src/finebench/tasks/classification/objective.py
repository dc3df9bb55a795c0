"""The classification objective: cross-entropy, the metrics of one confusion matrix, the confusion matrix saved."""

from __future__ import annotations

from pathlib import Path

from finebench.errors import FinebenchError
from finebench.tasks.classification.metrics import classification_metrics


class Classification:
    """Cross-entropy; accuracy / mean class accuracy / macro-F1 / top-5; the best epoch maximises val accuracy
    (ties: lower val loss); the test confusion matrix is saved."""

    name = "classification"

    def loss(self, out, y, t: dict):
        import torch.nn.functional as F

        return F.cross_entropy(out.float(), y, label_smoothing=t["label_smoothing"])

    def evaluate(self, model, loader, autocast, num_classes: int) -> dict:
        import torch
        import torch.nn.functional as F

        model.eval()
        loss_sum, logits, labels = 0.0, [], []
        with torch.no_grad():
            for x, y in loader:
                with autocast():
                    out = model(x)
                out = out.float()
                loss_sum += F.cross_entropy(out, y, reduction="sum").item()
                logits.append(out.cpu())
                labels.append(y.cpu())
        logits, labels = torch.cat(logits), torch.cat(labels)
        metrics, cm = classification_metrics(logits, labels, num_classes)
        return {"loss": loss_sum / len(labels), **metrics, "confusion": cm, "labels": labels}

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
        pd.DataFrame(cm, index=pd.Index(data.classes, name="true"), columns=data.classes).to_csv(out_dir / "confusion.csv")
        confusion_svg(cm, data.classes, out_dir / "confusion.svg", f"{title} — test confusion (acc {ev['accuracy']:.3f})")
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
