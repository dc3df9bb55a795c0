"""The speech-recognition objective for the one trainer (task type ``asr``).

- **Input**: :class:`ASRLoader` — batches of utterances of different lengths, padded: ``x`` is a :class:`Padded`
  (features ``[B, T, n_mels]`` standardised per band with the train split's statistics, and each utterance's frame
  count), ``y`` a :class:`Padded` of character ids (padding 0 = blank, and each transcript's length). Training
  batches come from a permutation of the train split by the run's torch generator (reproducible, resumable), cut
  by length into pools of ``training.length_buckets`` batches (:meth:`ASRLoader.batches`: a batch pads to lengths
  close to its own; SpecAugment masks from the same generator where ``training.spec_augment`` asks); evaluation
  keeps the prepared order. ``hf:`` audio models get the 16 kHz waveforms instead (``x.kind == "wav"``).
  Slicing a :class:`Padded` (``x[:1]``) cuts its padding to the slice's longest utterance, so the cost measurements
  count each utterance at its own length.
- **Models** return ``(logits [B, T', V], output lengths [B])`` (finebench.models.asr).
- **Loss**: CTC (``torch.nn.CTCLoss``, blank 0, mean over the batch of each utterance's loss ÷ its label length).
  A transcript longer than the model's output frames allow (CTC needs one frame per character plus one between
  repeated characters) is named before the first step — never trained on as an infinite loss.
- **Evaluation**: greedy decoding; WER and CER sclite-style with jiwer (finebench.tasks.asr.metrics).
- **Model selection**: the epoch with the lowest validation WER (ties: the lower CER).
- **Final artifacts**: ``hypotheses.csv`` (id, speaker, reference, hypothesis, word errors and reference words,
  character errors and reference characters, per test utterance in the prepared order); metrics.json gains
  ``test_wer``, ``test_cer``, the word-level substitutions / deletions / insertions, the decoding and the
  normaliser, and the audio seconds the cost was measured on (FLOPs per second of audio, real-time factor).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from finebench.errors import FinebenchError
from finebench.tasks.objective import Objective

COST_UTTERANCES = 8  # FLOPs are averaged over the first test utterances (finebench.cost.flops_per_sample's n)


class Padded:
    """A padded batch and each row's true length. ``len()`` is the batch size; a slice trims the padding to the
    longest row kept; ``.to(device)`` moves both."""

    def __init__(self, values, lengths, kind: str = "features"):
        self.values, self.lengths, self.kind = values, lengths, kind

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, s):
        if not isinstance(s, slice):
            raise TypeError("a Padded batch is sliced (x[a:b]), not indexed")
        lengths = self.lengths[s]
        longest = int(lengths.max()) if len(lengths) else 0
        return Padded(self.values[s][:, :longest], lengths, self.kind)

    def to(self, device, non_blocking: bool = False):
        return Padded(self.values.to(device, non_blocking=non_blocking),
                      self.lengths.to(device, non_blocking=non_blocking), self.kind)

    def pin_memory(self):
        return Padded(self.values.pin_memory(), self.lengths.pin_memory(), self.kind)


def pad(rows: list[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    out = np.zeros((len(rows), int(lengths.max()), *rows[0].shape[1:]), dtype=dtype)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out, lengths


def ctc_frames_needed(labels: np.ndarray) -> int:
    """The fewest output frames CTC can align ``labels`` to: one per symbol plus a blank between equal neighbours."""
    return int(len(labels) + np.count_nonzero(labels[1:] == labels[:-1])) if len(labels) else 0


def form_batches(order: np.ndarray, lengths: np.ndarray, size: int, buckets: int = 1,
                 cap: float | None = None) -> list[np.ndarray]:
    """Training batches from a permutation ``order`` of the utterances (``lengths``: each one's frames or samples).
    ``buckets`` > 1: the order is cut into pools of that many batches, each pool sorted by length and cut into
    batches, so a batch pads its utterances to lengths close to their own. ``cap`` (in the same unit as
    ``lengths``): besides at most ``size`` utterances, a batch holds no more than ``cap`` padded length — its
    count × its longest utterance (SpeechBrain's dynamic batching, ESPnet's batch bins) — so batches of short
    utterances are larger and batches of long ones smaller; one utterance longer than the cap is a batch of its own.
    The caller shuffles the batches."""
    pool = size * buckets if buckets > 1 else size
    batches = []
    for s in range(0, len(order), pool):
        p = order[s : s + pool]
        if buckets > 1:
            p = p[np.argsort(lengths[p], kind="stable")]
        if cap is None:
            batches += [p[j : j + size] for j in range(0, len(p), size)]
            continue
        start, longest = 0, 0
        for k in range(len(p)):
            longest_with = max(longest, int(lengths[p[k]]))
            if k > start and ((k - start + 1) * longest_with > cap or k - start >= size):
                batches.append(p[start:k])
                start, longest_with = k, int(lengths[p[k]])
            longest = longest_with
        batches.append(p[start:])
    return batches


def padding_ratio(batches: list[np.ndarray], lengths: np.ndarray) -> float:
    """Padded length over real length, summed over ``batches`` (1.0: no padding)."""
    return sum(len(b) * int(lengths[b].max()) for b in batches) / float(sum(int(lengths[b].sum()) for b in batches))


class ASRLoader:
    """Padded batches of one split of a prepared ``asr`` task, as device tensors. On CUDA the host batches (reading,
    padding, pinning) are built in a background thread two batches ahead and copied without blocking, as the
    classification loader's; the batches, their order and the SpecAugment masks are the same with and without it."""

    def __init__(self, data, split: str, batch_size: int, device, train: bool = False, generator=None,
                 max_batches: int | None = None, waveform: bool = False, buckets: int = 1,
                 spec_aug: dict | None = None, batch_seconds: float | None = None, prefetch: int | None = None):
        import torch

        from finebench.data.asr import ASRData

        self.asr = data if isinstance(data, ASRData) else ASRData(data.path)
        self.split, self.batch_size, self.device, self.train = split, batch_size, device, train
        self.generator, self.max_batches, self.waveform = generator, max_batches, waveform
        self.buckets, self.spec_aug, self.batch_seconds = buckets, spec_aug, batch_seconds
        self.prefetch = (2 if torch.device(device).type == "cuda" else 0) if prefetch is None else prefetch
        self.n = self.asr.count(split)
        self.data_seconds = 0.0

    def __len__(self) -> int:
        if self.train and self.batch_seconds:  # as many as the epoch's permutation gives (estimated: steps_estimate)
            n = self.steps_estimate()
        else:
            n = -(-self.n // self.batch_size)
        return min(n, self.max_batches) if self.train and self.max_batches else n

    def lengths(self) -> np.ndarray:
        return self.asr.index(self.split)[:, 5 if self.waveform else 1]

    def cap(self) -> float | None:
        """training.batch_seconds in the unit of :meth:`lengths` (samples, or feature frames)."""
        if not (self.train and self.batch_seconds):
            return None
        rate = self.asr.input["sample_rate"] / (1 if self.waveform else self.asr.input["hop"])
        return float(self.batch_seconds) * rate

    def steps_estimate(self) -> int:
        """The number of training batches of the next epoch, from a copy of the generator (nothing consumed)."""
        import torch

        copy = torch.Generator().manual_seed(0)
        copy.set_state(self.generator.get_state())
        order = torch.randperm(self.n, generator=copy).numpy()
        return len(form_batches(order, self.lengths(), self.batch_size, self.buckets, self.cap()))

    def host_batch(self, idx, pin: bool = False) -> tuple[Padded, Padded]:
        import torch

        get = self.asr.waveform if self.waveform else self.asr.features
        x_values, x_len = pad([get(self.split, int(i)) for i in idx], np.float32)
        y_values, y_len = pad([self.asr.labels(self.split, int(i)) for i in idx], np.int64)
        x = Padded(torch.from_numpy(x_values), torch.from_numpy(x_len), "wav" if self.waveform else "features")
        y = Padded(torch.from_numpy(y_values), torch.from_numpy(y_len), "labels")
        return (x.pin_memory(), y.pin_memory()) if pin else (x, y)

    def batch(self, idx) -> tuple[Padded, Padded]:
        x, y = self.host_batch(idx)
        return x.to(self.device), y.to(self.device)

    def batches(self) -> list[np.ndarray]:
        """Each batch's utterance indices. Evaluation: the prepared order. Training: a permutation from the run's
        generator, cut by :func:`form_batches` (length pools, the batch_seconds cap), the batches shuffled."""
        import torch

        size = self.batch_size
        if not self.train:
            return [np.arange(i, min(i + size, self.n)) for i in range(0, self.n, size)]
        order = torch.randperm(self.n, generator=self.generator).numpy()
        if self.buckets <= 1 and not self.batch_seconds:
            return [order[i : i + size] for i in range(0, self.n, size)]
        batches = form_batches(order, self.lengths(), size, self.buckets, self.cap())
        return [batches[i] for i in torch.randperm(len(batches), generator=self.generator).tolist()]

    def __iter__(self):
        import torch

        from finebench.loader import prefetched, spec_augment, timed

        dev = torch.device(self.device)
        chosen = self.batches()  # the generator is used here and below, in this thread only
        if self.train and self.max_batches:
            chosen = chosen[: self.max_batches]
        host = (self.host_batch(idx, pin=dev.type == "cuda") for idx in chosen)
        for x, y in (prefetched(host, self.prefetch, self) if self.prefetch else timed(host, self)):
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            if self.spec_aug and x.kind == "features":  # [B, T, n_mels] -> the [B, 1, F, T] spec_augment masks
                t0 = time.perf_counter()
                x = Padded(spec_augment(x.values.transpose(1, 2)[:, None], self.generator, **self.spec_aug)[:, 0]
                           .transpose(1, 2), x.lengths, x.kind)
                self.data_seconds += time.perf_counter() - t0
            yield x, y


def check_alignable(module, data, splits=("train", "val", "test")) -> None:
    """Every transcript must fit the model's output frames (CTC cannot align a longer one: its loss is infinite).
    Raises FinebenchError naming the first utterance that does not, before any training step."""
    import torch

    if not hasattr(module, "output_lengths"):
        return
    for split in splits:
        index = data.index(split)
        frames = module.output_lengths(torch.from_numpy(index[:, 5] if getattr(module, "takes_waveform", False)
                                                        else index[:, 1])).numpy()
        bad = [i for i in range(len(index)) if frames[i] < ctc_frames_needed(data.labels(split, i))]
        if bad:
            utt = data.utterances(split).iloc[bad[0]]
            raise FinebenchError(
                f"{split} utterance {utt['id']!r} ({utt['seconds']:.2f} s, {len(utt['text'])} characters: "
                f"{utt['text']!r}) needs {ctc_frames_needed(data.labels(split, bad[0]))} output frames for CTC, but "
                f"this model gives {int(frames[bad[0]])} ({len(bad)} utterance(s) of {split} are too long for it) — "
                f"lower the model's time subsampling (its `subsampling` / `stride` option), or prepare the features "
                f"with a smaller hop")


class SpeechRecognition(Objective):
    """CTC loss; greedy decoding; the best epoch minimises val WER (ties: val CER); hypotheses.csv per run."""

    name = "asr"

    def __init__(self):
        self.checked = False

    # -- hooks whose defaults (finebench.tasks.objective.Objective) speech recognition overrides --
    def loader(self, job, split: str, train: bool = False) -> ASRLoader:
        t = job.t
        capped = train and t.get("batch_seconds")  # batches vary: every one of the epoch, unless capped by hand
        loader = ASRLoader(job.data, split, t["batch_size"] if train else t["eval_batch_size"], job.dev, train=train,
                           generator=job.generator if train else None,
                           max_batches=((t.get("max_train_batches") if capped else job.steps_per_epoch)
                                        if train else None),
                           waveform=bool(getattr(job.module, "takes_waveform", False)),
                           buckets=t.get("length_buckets", 1) if train else 1,
                           spec_aug=t.get("spec_augment") if train else None,
                           batch_seconds=t.get("batch_seconds") if train else None)
        if not self.checked:  # the first loader of a run is built before its first step (or its evaluation)
            check_alignable(job.module, loader.asr)
            self.checked = True
        return loader

    def train_steps(self, data, t: dict, generator, module) -> int | None:
        """Training batches per epoch with ``training.batch_seconds`` (their count depends on the permutation: the
        first epoch's, which the learning-rate schedule is sized by; later epochs differ by a few batches, the
        cosine's end is held at 0), else None: ceil(utterances / batch_size)."""
        if not t.get("batch_seconds"):
            return None
        return ASRLoader(data, "train", t["batch_size"], "cpu", train=True, generator=generator,
                         waveform=bool(getattr(module, "takes_waveform", False)), buckets=t.get("length_buckets", 1),
                         batch_seconds=t["batch_seconds"]).steps_estimate()

    def cost_input(self, job):
        """The first test utterances (padded; the trainer slices them, which trims the padding)."""
        loader = self.loader(job, "test")
        x, _ = loader.batch(np.arange(min(loader.n, job.t["eval_batch_size"], 256)))
        return x

    def best_fields(self, key: tuple) -> dict:
        return {"best_val_wer": -key[0], "best_val_cer": -key[1]}

    def headline(self, result: dict) -> str:
        return f"test WER {100 * result['test_wer']:.2f} % CER {100 * result['test_cer']:.2f} % (greedy)"

    # -- the objective interface --
    def loss(self, out, y: Padded, t: dict):
        import torch.nn.functional as F

        logits, lengths = out
        log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # [T', B, V]
        return F.ctc_loss(log_probs, y.values, lengths, y.lengths, blank=0, reduction="mean", zero_infinity=False)

    def evaluate(self, model, loader: ASRLoader, autocast, num_classes: int = 0) -> dict:
        import torch

        from finebench.tasks.asr.metrics import greedy_decode, utterance_errors

        model.eval()
        vocab = loader.asr.vocab
        hyps, loss_sum, n = [], 0.0, 0
        with torch.no_grad():
            for x, y in loader:
                with autocast():
                    out = model(x)
                loss_sum += float(self.loss(out, y, {})) * len(y)
                n += len(y)
                best = out[0].float().argmax(-1).cpu().numpy()
                for row, length in zip(best, out[1].cpu().numpy()):
                    hyps.append("".join(vocab[i] for i in greedy_decode(row, int(length))))
        refs = loader.asr.utterances(loader.split)["text"].tolist()
        scores = utterance_errors(refs, hyps)
        return {"loss": loss_sum / max(n, 1), **scores, "hypotheses": hyps, "references": refs}

    def selection_key(self, ev: dict) -> tuple:
        return (-ev["wer"], -ev["cer"])  # the trainer keeps the largest key: the lowest WER, then CER

    def epoch_fields(self, ev: dict) -> dict:
        return {"val_loss": ev["loss"], "val_wer": ev["wer"], "val_cer": ev["cer"]}

    def final(self, ev: dict, data, out_dir: Path, title: str, more: dict) -> dict:
        import pandas as pd

        from finebench.data.asr import ASRData
        from finebench.tasks.asr.metrics import DECODING

        asr = ASRData(data.path)
        utt = asr.utterances("test")
        pd.DataFrame({"id": utt["id"], "speaker": utt["speaker"], "reference": ev["references"],
                      "hypothesis": ev["hypotheses"], "word_errors": ev["word_errors"], "ref_words": ev["ref_words"],
                      "char_errors": ev["char_errors"], "ref_chars": ev["ref_chars"]}).to_csv(
            out_dir / "hypotheses.csv", index=False)
        seconds = utt["seconds"].to_numpy(float)
        return {
            "task_type": "asr",
            "test_wer": ev["wer"], "test_cer": ev["cer"], "test_loss": ev["loss"],
            "test_substitutions": ev["substitutions"], "test_deletions": ev["deletions"],
            "test_insertions": ev["insertions"], "test_ref_words": int(sum(ev["ref_words"])),
            "test_ref_chars": int(sum(ev["ref_chars"])), "n_test": int(len(utt)),
            "test_hours": float(seconds.sum() / 3600), "decoding": DECODING,
            "normaliser": asr.manifest.get("normaliser", ""), "vocab_size": len(asr.vocab),
            # the corpus subsets scored (LibriSpeech: test-clean or test-other), matched with references.yaml
            "test_set": "+".join(asr.manifest.get("source", {}).get("subsets", {}).get("test", [])) or "test",
            # what the cost columns were measured on: FLOPs over the first COST_UTTERANCES test utterances, the
            # batch-1 latency on the first one (flops / second of audio, real-time factor = latency / duration)
            "cost_audio_seconds": float(seconds[:COST_UTTERANCES].mean()), "cost_first_seconds": float(seconds[0]),
        }
