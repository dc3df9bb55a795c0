"""The super-resolution objective for the one trainer (``train.OBJECTIVES["superres"]``).

- **Input**: :class:`SRLoader` — training batches of random LR/HR patch pairs (``input.patch_size`` LR pixels,
  the 8 flips/rotations, ``input.patches_per_epoch`` patches per epoch, images drawn in proportion to their area),
  evaluation one whole image at a time. Values are 0..1 floats (uint8 / 255). A grey image goes in as three equal
  channels (the models take RGB); its HR target stays one channel, scored on its own grey values. The patch
  positions come from a
  numpy generator seeded from the run's torch generator at the start of each epoch, so runs are reproducible and
  resume exactly.
- **Loss**: L1 by default (``training.loss``: ``l1``, ``mse`` or ``charbonnier``).
- **Evaluation**: every image super-resolved whole, quantised to 8 bits and scored with PSNR/SSIM on Y with
  ``scale`` pixels shaved (finebench.tasks.superres.metrics; a grey image on its own values); the split's score is the
  mean over images.
- **Model selection**: the epoch with the best validation PSNR.
- **Final artifacts**: ``per_image.csv`` (PSNR/SSIM of the model and of bicubic for every image of every test set) and
  ``examples.npz`` (the report's test crop: LR, bicubic, this model's SR, HR); metrics.json gains ``test_psnr``,
  ``test_ssim``, the bicubic baseline on the same images (``more_tests``: the same per further test set, e.g.
  ``{"set14": {"test_psnr": …}}``), and the cost input's size (FLOPs are counted on one
  64 x 64 LR crop: ``flops_per_output_pixel`` = FLOPs / (64 s)^2).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from finebench.errors import FinebenchError
from finebench.tasks.objective import Objective

COST_LR_SIZE = 64  # FLOPs and latency are measured on one COST_LR_SIZE^2 LR crop of the first test image
LOSSES = ("l1", "mse", "charbonnier")


class SRLoader:
    """Training patches or whole evaluation images of a prepared SR task, as device tensors (``x`` LR, ``y`` HR)."""

    def __init__(self, data, split: str, batch_size: int, device, train: bool = False, generator=None,
                 max_batches: int | None = None, prefetch: int | None = None):
        from finebench.data.superres import SRData

        self.prefetch = prefetch  # batches read ahead in a thread; None: 2 on CUDA, 0 (this thread) elsewhere
        self.sr = data if isinstance(data, SRData) else SRData(data.path)
        self.split, self.batch_size, self.device, self.train = split, batch_size, device, train
        self.generator, self.max_batches = generator, max_batches
        self.data_seconds = 0.0

    def __len__(self) -> int:
        if not self.train:
            return self.sr.count(self.split)
        n = -(-int(self.sr.input["patches_per_epoch"]) // self.batch_size)
        return min(n, self.max_batches) if self.max_batches else n

    @staticmethod
    def _host(a: np.ndarray, pin: bool):
        """uint8 array -> a CPU tensor (pinned for a non-blocking copy to CUDA); made float on the device."""
        import torch

        a = np.ascontiguousarray(a)
        if not a.flags.writeable:  # a one-channel image's CHW view of the read-only store is contiguous: not copied
            a = a.copy()
        t = torch.from_numpy(a)
        return t.pin_memory() if pin else t

    def _host_pairs(self, pin: bool, rng):
        if not self.train:
            from finebench.data.superres import as_rgb

            for i in range(self.sr.count(self.split)):
                lr, hr = self.sr.pair(self.split, i)  # y: [1, 3, H, W], or [1, 1, H, W] for a grey image
                yield self._host(as_rgb(lr).transpose(2, 0, 1)[None], pin), self._host(hr.transpose(2, 0, 1)[None], pin)
            return
        total = int(self.sr.input["patches_per_epoch"])
        for b in range(len(self)):
            lr, hr = self.sr.patches(min(self.batch_size, total - b * self.batch_size), rng)
            yield self._host(lr, pin), self._host(hr, pin)

    def __iter__(self):
        """On CUDA the host batches (crops, pinning) are read in a background thread two ahead and copied without
        blocking; the same batches either way (the epoch's crop generator is seeded here, from the run's)."""
        import torch

        from finebench.loader import prefetched, timed

        dev = torch.device(self.device)
        rng = None
        if self.train:  # the run's generator is used here, in this thread only
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator)))
        host = self._host_pairs(dev.type == "cuda", rng)
        depth = (2 if dev.type == "cuda" else 0) if self.prefetch is None else self.prefetch
        for x, y in (prefetched(host, depth, self) if depth else timed(host, self)):
            yield (x.to(dev, non_blocking=True).float().div_(255.0), y.to(dev, non_blocking=True).float().div_(255.0))


def crop_example(img: np.ndarray, ex: dict, scale: int, lr: bool = False) -> np.ndarray:
    top, left, size = ex["top"], ex["left"], ex["size"]
    if lr:
        top, left, size = top // scale, left // scale, size // scale
    return np.ascontiguousarray(img[top : top + size, left : left + size])


class SuperResolution(Objective):
    """L1 loss; PSNR/SSIM on Y; the best epoch maximises val PSNR (ties: val SSIM); examples for the report."""

    name = "superres"

    # -- hooks whose defaults (finebench.tasks.objective.Objective) super-resolution overrides --
    def loader(self, job, split: str, train: bool = False) -> SRLoader:
        t = job.t
        return SRLoader(job.data, split, t["batch_size"], job.dev, train=train,
                        generator=job.generator if train else None,
                        max_batches=job.steps_per_epoch if train else None)

    def train_size(self, data) -> int:
        return int(data.input["patches_per_epoch"])

    def cost_input(self, job):
        """One COST_LR_SIZE^2 LR crop (centre of the first test image), batch of 1."""
        from finebench.data.superres import SRData, as_rgb

        lr, _ = SRData(job.data.path).pair("test", 0)
        s = min(COST_LR_SIZE, lr.shape[0], lr.shape[1])
        top, left = (lr.shape[0] - s) // 2, (lr.shape[1] - s) // 2
        crop = as_rgb(lr[top : top + s, left : left + s]).transpose(2, 0, 1)[None]
        return SRLoader._host(crop, False).to(job.dev).float().div_(255.0)

    # evaluation runs one whole image at a time: no batch size to lower (finebench.train.memory_hint)
    eval_memory_advice = ("super-resolution scores every validation and test image whole, one at a time: this model "
                          "needs more accelerator memory than this one has for the largest of them (run it on a "
                          "larger GPU, or leave the task's largest test set out of test_set)")
    cost_memory_advice = ("the cost measurement runs one small LR crop (batch 1): this model does not fit in this "
                          "accelerator's memory at all")

    def best_fields(self, key: tuple) -> dict:
        return {"best_val_psnr": key[0], "best_val_ssim": key[1]}

    def headline(self, result: dict) -> str:
        return (f"test PSNR {result['test_psnr']:.3f} dB SSIM {result['test_ssim']:.4f} "
                f"(bicubic {result['bicubic_psnr']:.3f} dB)")

    # -- the objective interface --
    def loss(self, out, y, t: dict):
        import torch
        import torch.nn.functional as F

        kind = t.get("loss") or "l1"
        out = out.float()
        if kind == "l1":
            return F.l1_loss(out, y)
        if kind == "mse":
            return F.mse_loss(out, y)
        if kind == "charbonnier":
            return torch.sqrt((out - y) ** 2 + 1e-6).mean()
        raise FinebenchError(f"training.loss: unknown {kind!r} for super-resolution; valid: {', '.join(LOSSES)}")

    def evaluate(self, model, loader, autocast, num_classes: int = 0) -> dict:
        import torch
        import torch.nn.functional as F

        from finebench.tasks.superres.metrics import sr_scores, to_uint8

        model.eval()
        scale = loader.sr.scale
        per, loss_sum, first = [], 0.0, None
        with torch.no_grad():
            for x, y in loader:
                with autocast():
                    out = model(x)
                out = out.float().clamp_(0, 1)
                if out.shape[:1] + out.shape[2:] != y.shape[:1] + y.shape[2:] or out.shape[1] != 3:
                    raise FinebenchError(f"super-resolution model output {tuple(out.shape)} != HR {tuple(y.shape)} "
                                         f"(RGB)")
                loss_sum += F.l1_loss(out, y.expand_as(out)).item()  # a grey HR against each output channel
                sr = to_uint8(out[0].permute(1, 2, 0).mul(255.0))
                hr = to_uint8(y[0].permute(1, 2, 0).mul(255.0))  # one channel for a grey image: scored on its values
                per.append(sr_scores(hr, sr, scale))
                if first is None:
                    first = sr
        return {"loss": loss_sum / len(per), "psnr": float(np.mean([p["psnr"] for p in per])),
                "ssim": float(np.mean([p["ssim"] for p in per])), "per_image": per, "first_sr": first}

    def selection_key(self, ev: dict) -> tuple:
        return (ev["psnr"], ev["ssim"])

    def epoch_fields(self, ev: dict) -> dict:
        return {"val_loss": ev["loss"], "val_psnr": ev["psnr"], "val_ssim": ev["ssim"]}

    def final(self, ev: dict, data, out_dir: Path, title: str, more: dict) -> dict:
        import pandas as pd

        from finebench.data.superres import SRData, as_rgb, bicubic_upscale

        sr_data = SRData(data.path)
        m = sr_data.manifest
        scale = sr_data.scale
        first = m.get("source", {}).get("test_set")  # set5 / set14 / bsd100 / urban100 (sr_benchmark)
        splits = {first or "test": ("test", ev), **{name: (m["more_tests"][name], e) for name, e in more.items()}}
        per_image, scores = [], {}
        for name, (split, e) in splits.items():
            bic, bic_per = m["baseline"]["bicubic"][split], m["baseline"][f"bicubic_per_image_{split}"]
            per_image.append(pd.DataFrame({
                "test_set": name, "image": sr_data.names(split), "psnr": [p["psnr"] for p in e["per_image"]],
                "ssim": [p["ssim"] for p in e["per_image"]], "bicubic_psnr": [p["psnr"] for p in bic_per],
                "bicubic_ssim": [p["ssim"] for p in bic_per]}))
            scores[name] = {"test_psnr": e["psnr"], "test_ssim": e["ssim"], "test_loss": e["loss"],
                            "bicubic_psnr": bic["psnr"], "bicubic_ssim": bic["ssim"], "n_test": len(e["per_image"])}
        pd.concat(per_image, ignore_index=True).to_csv(out_dir / "per_image.csv", index=False)
        ex = m["example"]
        lr, hr = sr_data.pair("test", ex["image"])  # a grey image's crops are stored on three equal channels
        np.savez_compressed(out_dir / "examples.npz", lr=as_rgb(crop_example(lr, ex, scale, lr=True)),
                            bicubic=as_rgb(crop_example(bicubic_upscale(np.asarray(lr), scale), ex, scale)),
                            sr=crop_example(ev["first_sr"], ex, scale), hr=as_rgb(crop_example(hr, ex, scale)),
                            image=np.array(sr_data.names("test")[ex["image"]]),
                            box=np.array([ex["top"], ex["left"], ex["size"]]),
                            grey=np.array(hr.ndim == 2 or hr.shape[-1] == 1))  # scored on its own values
        s = min(COST_LR_SIZE, lr.shape[0], lr.shape[1])
        return {
            "task_type": "superres",
            "scale": scale,
            **scores[first or "test"],
            "bicubic_val_psnr": m["baseline"]["bicubic"]["val"]["psnr"],
            "sr_test_set": first,
            "more_tests": {name: scores[name] for name in more},  # the same fields for each further test set
            "cost_lr_size": [s, s],
            "cost_output_pixels": (s * scale) ** 2,
        }
