"""The one trainer: fit on train, select the best epoch on val, evaluate test once, write metrics.

    python -m finebench train --spec spec.json --data results/data/typefaces \
        --experiment-file results/mlflow/experiment.json --out results/runs/typefaces/resnet18/seed0

Same spec + same seed on the CPU gives identical metrics (seeded init, seeded shuffling, deterministic kernels).
On CUDA the forward pass runs under bf16 autocast. Outputs in ``--out``: ``spec.json``, ``history.csv`` (one row per
epoch), ``confusion.csv`` / ``confusion.png`` (test split, best epoch) and ``metrics.json`` — written last and
atomically, so its presence means the run completed.
"""

from __future__ import annotations

import copy
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np

from finebench.config import spec_hash
from finebench.cost import measure
from finebench.data import Prepared
from finebench.files import write_json_atomic
from finebench.models import build_model


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(requested: str):
    import torch

    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            from finebench.errors import FinebenchError

            raise FinebenchError("device: cuda was requested but torch.cuda.is_available() is False")
        return torch.device("cuda")
    return torch.device("cpu")


def make_optimizer(model, t: dict):
    import torch

    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": t["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    if t["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=t["lr"], momentum=t["momentum"], nesterov=True)
    return torch.optim.AdamW(groups, lr=t["lr"])


def lr_factor(step: int, total: int, warmup: int, kind: str) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to 0 (or constant)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def spec_augment(x, generator, freq_masks=2, freq_width=5, time_masks=2, time_width=10):
    """SpecAugment-style masking (Park et al. 2019) of ``[B, C, F, T]`` inputs: zero random frequency bands and time
    spans per sample (zero = the train mean after standardisation). Positions come from the seeded ``generator``."""
    import torch

    b, _, f, t = x.shape
    keep = torch.ones(b, 1, f, t, dtype=torch.bool)
    for n, width, size, dim in ((freq_masks, freq_width, f, 2), (time_masks, time_width, t, 3)):
        for _ in range(n):
            w = torch.randint(0, width + 1, (b,), generator=generator)
            start = (torch.rand(b, generator=generator) * (size - w + 1)).long()
            pos = torch.arange(size)
            band = (pos[None] >= start[:, None]) & (pos[None] < (start + w)[:, None])  # [B, size]
            keep &= ~(band[:, None, :, None] if dim == 2 else band[:, None, None, :])
    return x * keep.to(x.device, x.dtype)


def evaluate(model, data: Prepared, split: str, batch_size: int, device, autocast):
    """Return (mean loss, logits [N, K] float32 on CPU, labels [N])."""
    import torch
    import torch.nn.functional as F

    model.eval()
    losses, logits, labels = [], [], []
    with torch.no_grad():
        for x, y in data.batches(split, batch_size, device):
            with autocast():
                out = model(x)
            out = out.float()
            losses.append(F.cross_entropy(out, y, reduction="sum").item())
            logits.append(out.cpu())
            labels.append(y.cpu())
    logits, labels = torch.cat(logits), torch.cat(labels)
    return sum(losses) / len(labels), logits, labels


def macro_f1(cm: np.ndarray) -> float:
    """Unweighted mean of per-class F1 over all classes (a class never predicted nor present scores 0), as
    sklearn's f1_score(average="macro", labels=all, zero_division=0) — computed here to keep sklearn's import off
    every training job's start-up."""
    tp = np.diag(cm).astype(float)
    denom = cm.sum(0) + cm.sum(1)  # predicted + true = 2TP + FP + FN
    return float(np.mean(np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)))


def mean_class_accuracy(cm: np.ndarray) -> float:
    """Mean over the classes present of each class's accuracy (recall): the average of the row-normalised confusion
    matrix's diagonal — the official metric of FGVC-Aircraft and Flowers-102."""
    rows = cm.sum(1)
    present = rows > 0
    return float(np.mean(np.diag(cm)[present] / rows[present]))


def split_protocol(manifest: dict) -> str:
    """How the splits came about, for comparing with published numbers (see report.protocol_differences)."""
    counts = manifest.get("official_counts")
    text = "official" if manifest.get("official_split") else "the dataset's own"
    if counts and not counts["match"]:
        text += " (counts differ from the release)"
    if manifest.get("carved_splits"):
        text += f" + {'/'.join(manifest['carved_splits'])} carved from train"
    return text


def classification_metrics(logits, labels, num_classes: int) -> dict:
    pred = logits.argmax(1).numpy()
    y = labels.numpy()
    cm = confusion(logits, labels, num_classes)
    out = {
        "accuracy": float((pred == y).mean()),
        "mean_class_accuracy": mean_class_accuracy(cm),
        "macro_f1": macro_f1(cm),
    }
    if num_classes >= 5:
        top5 = logits.topk(5, dim=1).indices.numpy()
        out["top5"] = float((top5 == y[:, None]).any(1).mean())
    return out


def confusion(logits, labels, num_classes: int) -> np.ndarray:
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels.numpy(), logits.argmax(1).numpy()), 1)
    return cm


def save_confusion(cm: np.ndarray, classes: list[str], out_dir: Path, title: str) -> None:
    import pandas as pd

    from finebench.plots import plot_confusion

    pd.DataFrame(cm, index=pd.Index(classes, name="true"), columns=classes).to_csv(out_dir / "confusion.csv")
    plot_confusion(cm, classes, out_dir / "confusion.png", title)


def fit(spec: dict, data_dir: str | Path, out_dir: str | Path, experiment_file: str | Path,
        device: str = "auto", threads: int = 1, progress: bool | None = None) -> dict:
    """Train one (task, model, seed) run; returns the metrics dict also written to ``metrics.json``."""
    import contextlib

    import pandas as pd
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    from finebench.tracking import Run

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").unlink(missing_ok=True)
    torch.set_num_threads(threads)
    seed_everything(spec["seed"])
    dev = pick_device(device)
    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)

    def autocast():
        if dev.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    data = Prepared(data_dir)
    t = spec["training"]
    model = build_model(spec["arch"], spec["model_kwargs"], data.input, data.num_classes).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = make_optimizer(model, t)
    n_train = data.manifest["splits"]["train"]["n"]
    steps_per_epoch = math.ceil(n_train / t["batch_size"])
    if t.get("max_train_batches"):
        steps_per_epoch = min(steps_per_epoch, t["max_train_batches"])
    total_steps = steps_per_epoch * t["epochs"]
    warmup = int(round(t["warmup_epochs"] * steps_per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total_steps, warmup, t["scheduler"])
    )
    gen = torch.Generator().manual_seed(spec["seed"])
    (out_dir / "spec.json").write_text(json.dumps(spec, indent=2))
    name = f"{spec['task']}/{spec['model']}/seed{spec['seed']}"
    show = sys.stderr.isatty() if progress is None else progress
    print(f"[finebench] {name}: {spec['arch']} ({n_params:,} params) on {dev}, {threads} thread(s), "
          f"{t['epochs']} epochs x {steps_per_epoch} steps", file=sys.stderr, flush=True)

    note = "SYNTHESIZED speech (espeak-ng)" if data.manifest.get("synthesized") else ""
    tags = {"config_hash": spec_hash(spec), "device": dev.type, **({"data_note": note} if note else {})}
    with Run(experiment_file, spec, tags=tags) as run:
        run.log_metrics({"params": n_params})
        history, best, best_state = [], None, None
        train_seconds, samples_seen = 0.0, 0
        for epoch in range(1, t["epochs"] + 1):
            model.train()
            t0 = time.perf_counter()
            total_loss, seen = 0.0, 0
            bar = tqdm(data.batches("train", t["batch_size"], dev, shuffle=True, generator=gen, augment=True),
                       total=steps_per_epoch, desc=f"{name} epoch {epoch}/{t['epochs']}", disable=not show, leave=False)
            for step, (x, y) in enumerate(bar):
                if step >= steps_per_epoch:
                    break
                if t.get("spec_augment") and data.input["kind"] == "spectrogram":
                    x = spec_augment(x, gen, **t["spec_augment"])
                with autocast():
                    loss = F.cross_entropy(model(x).float(), y, label_smoothing=t["label_smoothing"])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if t["grad_clip"]:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"])
                optimizer.step()
                sched.step()
                total_loss += loss.item() * len(y)
                seen += len(y)
                bar.set_postfix(loss=f"{loss.item():.3f}")
            if dev.type == "cuda":
                torch.cuda.synchronize()
            epoch_train = time.perf_counter() - t0
            train_seconds += epoch_train
            samples_seen += seen
            val_loss, val_logits, val_y = evaluate(model, data, "val", t["eval_batch_size"], dev, autocast)
            val = classification_metrics(val_logits, val_y, data.num_classes)
            row = {
                "epoch": epoch,
                "train_loss": total_loss / max(seen, 1),
                "val_loss": val_loss,
                "val_accuracy": val["accuracy"],
                "val_macro_f1": val["macro_f1"],
                "lr": optimizer.param_groups[0]["lr"],
                "train_seconds": epoch_train,  # the training loop alone
                "epoch_seconds": time.perf_counter() - t0,  # + validation
            }
            history.append(row)
            run.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch)
            print(f"[finebench] {name} epoch {epoch}: train_loss {row['train_loss']:.4f} val_loss {val_loss:.4f} "
                  f"val_acc {val['accuracy']:.4f} ({row['epoch_seconds']:.1f}s)", file=sys.stderr, flush=True)
            key = (val["accuracy"], -val_loss)
            if best is None or key > best[0]:
                best = (key, epoch)
                best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})

        model.load_state_dict(best_state)
        test_loss, test_logits, test_y = evaluate(model, data, "test", t["eval_batch_size"], dev, autocast)
        test = classification_metrics(test_logits, test_y, data.num_classes)
        x_cost, _ = next(data.batches("test", min(t["eval_batch_size"], 256), dev))
        cost = measure(model, x_cost, autocast, dev, tokens=data.input["kind"] == "tokens")
        counts = np.bincount(test_y.numpy(), minlength=data.num_classes)
        metrics = {
            "test_accuracy": test["accuracy"],
            "test_mean_class_accuracy": test["mean_class_accuracy"],
            "test_macro_f1": test["macro_f1"],
            "test_top5": test.get("top5"),
            "test_loss": test_loss,
            "best_epoch": best[1],
            "best_val_accuracy": best[0][0],
            "params": n_params,
            "train_seconds": train_seconds,
            "train_samples_per_s": samples_seen / train_seconds if train_seconds else None,
            "chance_accuracy": 1.0 / data.num_classes,
            "majority_accuracy": float(counts.max() / counts.sum()),
            **cost,
        }
        pd.DataFrame(history).to_csv(out_dir / "history.csv", index=False)
        cm = confusion(test_logits, test_y, data.num_classes)
        save_confusion(cm, data.classes, out_dir, f"{name} — test confusion (acc {test['accuracy']:.3f})")
        run.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        run.log_artifacts(out_dir)
        kw = spec["model_kwargs"]
        protocol = {
            "pretraining": getattr(model, "pretraining", None)  # hf: models say where their weights came from
            or (f"file {Path(kw['pretrained_file']).name}" if kw.get("pretrained_file")
                else ("timm hub weights" if kw.get("pretrained") else "none")),
            "resolution": data.input.get("height") if data.input["kind"] == "image" else None,
            "split": split_protocol(data.manifest),
        }
        result = {
            **{k: spec[k] for k in ("task", "dataset", "modality", "model", "family", "arch", "seed")},
            "protocol": protocol,
            "data_note": note,
            "status": "FINISHED",
            "mlflow_run_id": run.run_id,
            "mlflow_experiment_id": run.experiment_id,
            "spec_hash": spec_hash(spec),
            "device": dev.type,
            "threads": threads,
            "epochs": t["epochs"],
            "num_classes": data.num_classes,
            "n_train": n_train,
            "n_test": int(len(test_y)),
            **metrics,
        }
    write_json_atomic(out_dir / "metrics.json", result)
    print(f"[finebench] {name}: test_acc {metrics['test_accuracy']:.4f} macro_f1 {metrics['test_macro_f1']:.4f} "
          f"(best epoch {best[1]}, {train_seconds:.1f}s train)", file=sys.stderr, flush=True)
    return result
