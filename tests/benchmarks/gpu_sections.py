"""The sections of gpu_check.sh that are not scripts of their own, and its result table. Each command appends rows
(section, item, status, seconds, result) to the tab-separated ``--rows`` file; ``table`` prints them as one table.

    python tests/benchmarks/gpu_sections.py rnn-dtype --device cuda --rows rows.tsv
    python tests/benchmarks/gpu_sections.py sync --device cuda --steps 20 --rows rows.tsv
    python tests/benchmarks/gpu_sections.py asr-steps --device cuda --steps 200 --rows rows.tsv
    python tests/benchmarks/gpu_sections.py smoke-rows|loop-rows|projection-rows CSV ... --rows rows.tsv
    python tests/benchmarks/gpu_sections.py table rows.tsv --md table.md

- **rnn-dtype** (#33 items 2, 3): an LSTM's / GRU's output dtype under bf16 autocast with and without
  finebench.models.precision.fp32_recurrent (on CUDA the bare layer gives float16: cuDNN's autocast kernel casts to
  fp16 whatever was asked), and their FLOPs counted by shape against a hand count.
- **sync**: ``torch.cuda.set_sync_debug_mode("warn")`` over ``--steps`` batches of each loader (classification
  images with augmentation, log-mels with SpecAugment, token ids; speech recognition's ASRLoader; super-resolution's
  SRLoader) and over the trainer's own loop (train_one_epoch) — each synchronizing CUDA call counted, with the Python
  line that made it. A loader should make none; the trainer's epoch ends with a few (its explicit synchronize and
  the loss read after it). On the CPU the loaders run the same batches and the check reads "n/a on cpu".
- **asr-steps**: ``--steps`` timed training steps per speech-recognition model of the config (ds2, quartznet,
  conformer of benchmark.yaml's librispeech100) at its real batch size, on synthetic LibriSpeech-like batches
  (benchmark_time.write_asr_prepared), after 3 warm-up steps: seconds per step, utterances and audio seconds per
  second, the share spent waiting for input, peak memory, and what one train-clean-100 epoch would take.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))

COLUMNS = ["section", "item", "status", "seconds", "result"]


def add_row(rows: str | None, section: str, item: str, status: str, seconds, result: str) -> None:
    line = "\t".join(str(v).replace("\t", " ").replace("\n", " ") for v in
                     (section, item, status, "" if seconds is None else f"{float(seconds):.1f}", result))
    print(f"[{section}] {item}: {status} — {result}", flush=True)
    if rows:
        with open(rows, "a", encoding="utf-8") as f:
            f.write(line + "\n")


# ---------------------------------------------------------------------------------------------------------------------
# rnn-dtype


def rnn_dtype(args) -> int:
    import copy

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from finebench.cost import flops_per_sample
    from finebench.models.precision import fp32_recurrent

    dev = torch.device(args.device)
    bad = 0
    for cls in (torch.nn.LSTM, torch.nn.GRU):
        t0 = time.perf_counter()
        plain = cls(64, 128, num_layers=2, bidirectional=True, batch_first=True).to(dev)
        x = torch.randn(4, 50, 64, device=dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            try:
                bare = str(plain(x)[0].dtype).replace("torch.", "")
            except RuntimeError as exc:  # CPUs without bf16 units: oneDNN's bf16 LSTM has no kernel
                bare = f"an error ({str(exc)[:60]})"
            wrapped = str(fp32_recurrent(copy.deepcopy(plain))(x)[0].dtype).replace("torch.", "")
        with torch.no_grad(), FlopCounterMode(display=False) as seen:
            plain(x[:1])
        hand = 2 * 50 * sum(p.numel() for n, p in plain.named_parameters() if n.startswith("weight"))  # both directions
        by_shape = flops_per_sample(plain, x)
        ok = wrapped == "float32" and abs(by_shape - hand) <= 0.01 * hand
        if dev.type == "cuda":
            status = "ok" if ok and bare == "float16" else "UNEXPECTED"
            expect = " (expected float16 bare, float32 wrapped)"
        else:
            status = "cpu equivalent" if ok else "UNEXPECTED"
            expect = " (on CUDA the bare layer gives float16)"
        bad += status == "UNEXPECTED"
        add_row(args.rows, "rnn dtype", f"{cls.__name__} bf16 autocast", status, time.perf_counter() - t0,
                f"bare {bare}, fp32_recurrent {wrapped}{expect}; FLOPs/sample by shape {by_shape:,.0f} (hand "
                f"{hand:,}), FlopCounterMode alone {seen.get_total_flops():,}")
    return 1 if bad else 0


# ---------------------------------------------------------------------------------------------------------------------
# sync


@contextlib.contextmanager
def counting_syncs(dev):
    """Yield a list that collects, under torch.cuda.set_sync_debug_mode("warn"), one entry per synchronizing CUDA call
    (in any thread): the innermost finebench (else any) Python frame that made it, and the thread. Off the GPU:
    nothing to count."""
    import torch

    seen: list[str] = []
    if dev.type != "cuda":
        yield seen
        return
    plain = warnings.showwarning

    def hook(message, category, filename, lineno, file=None, line=None):
        if "synchroniz" not in str(message):
            return plain(message, category, filename, lineno, file, line)
        frames = [f for f in traceback.extract_stack()[:-1] if "/warnings.py" not in f.filename
                  and "gpu_sections.py" not in f.filename]
        ours = [f for f in frames if "finebench" in f.filename] or frames or [None]
        f = ours[-1]
        where = f"{Path(f.filename).name}:{f.lineno} {f.name}" if f else "?"
        seen.append(f"{where} [{threading.current_thread().name}]")

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = hook
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield seen
        finally:
            torch.cuda.set_sync_debug_mode("default")
            torch.cuda.synchronize()


def where_of(seen: list[str]) -> str:
    if not seen:
        return ""
    counts = pd.Series(seen).value_counts()
    return "; at " + ", ".join(f"{w} x{n}" for w, n in counts.head(3).items())


def sync_data(work: Path, steps: int, batch: int) -> dict[str, Path]:
    """Small prepared tasks of each input kind (synthetic, real shapes), built once in ``work``."""
    from benchmark_time import write_asr_prepared, write_prepared, write_sr_prepared

    from finebench import data as fbdata

    out = {}
    n = {"train": batch * steps, "val": batch, "test": batch}
    for name, info in (("image", {"kind": "image", "channels": 3, "height": 224, "width": 224, "stored_size": 256,
                                  "augment": "random_resized_crop_flip"}),
                       ("spectrogram", {"kind": "spectrogram", "channels": 1, "n_mels": 40, "frames": 100,
                                        "mean": 0.0, "std": 1.0}),
                       ("tokens", {"kind": "tokens", "vocab_size": 16000, "pad_id": 0, "max_len": 64})):
        out[name] = work / name
        if not (out[name] / "manifest.json").is_file():
            write_prepared(out[name], info, 6, n)
    out["asr"] = work / "asr"
    if not (out["asr"] / "manifest.json").is_file():
        write_asr_prepared(out["asr"], fbdata.DATASETS["librispeech"].defaults, n, waveform=False)
    out["superres"] = work / "superres"
    if not (out["superres"] / "manifest.json").is_file():
        options = {"scale": 2, "patch_size": 48, "patches_per_epoch": batch * steps, "degradation": "matlab_bicubic"}
        write_sr_prepared(out["superres"], "superres", options, work)
    return out


def sync_check(args) -> int:
    import torch

    from finebench import config as fbconfig
    from finebench.data import Prepared
    from finebench.data.asr import ASRData
    from finebench.data.superres import SRData
    from finebench.loader import Loader
    from finebench.tasks.asr.objective import ASRLoader
    from finebench.tasks.superres.objective import SRLoader
    from finebench.train import set_up, train_one_epoch

    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    steps, batch = args.steps, args.batch
    t0 = time.perf_counter()
    data = sync_data(Path(args.work), steps, batch)
    add_row(args.rows, "sync", "synthetic data", "ok", time.perf_counter() - t0,
            f"{batch} x {steps} training examples per kind, in {args.work}")

    def gen():
        return torch.Generator().manual_seed(0)

    aug = {"freq_masks": 2, "freq_width": 8, "time_masks": 2, "time_width": 20}
    prefetch = 2 if cuda else 0
    loaders = {
        "Loader image + crop/flip": lambda: Loader(Prepared(data["image"]), "train", batch, dev, shuffle=True,
                                                   generator=gen(), augment=True, max_batches=steps,
                                                   prefetch=prefetch, channels_last=cuda),
        "Loader log-mel + SpecAugment": lambda: Loader(Prepared(data["spectrogram"]), "train", batch, dev,
                                                       shuffle=True, generator=gen(), augment=True, spec_aug=aug,
                                                       max_batches=steps, prefetch=prefetch),
        "Loader tokens (trimmed)": lambda: Loader(Prepared(data["tokens"]), "train", batch, dev, shuffle=True,
                                                  generator=gen(), max_batches=steps, prefetch=prefetch),
        "ASRLoader + SpecAugment, pools": lambda: ASRLoader(ASRData(data["asr"]), "train", batch, dev, train=True,
                                                            generator=gen(), max_batches=steps, buckets=4,
                                                            spec_aug=aug),
        "SRLoader patches": lambda: SRLoader(SRData(data["superres"]), "train", batch, dev, train=True,
                                             generator=gen(), max_batches=steps),
    }
    bad = 0
    for name, make in loaders.items():
        t0 = time.perf_counter()
        try:
            loader = make()
            n = 0
            with counting_syncs(dev) as seen:
                for _ in loader:
                    n += 1
                    if n >= steps:
                        break
            status = ("ok" if not seen else "SYNCS") if cuda else "n/a on cpu"
            result = (f"{n} batches of {batch}: {len(seen)} synchronizing CUDA call(s){where_of(seen)}" if cuda
                      else f"{n} batches of {batch} ran on the CPU (no CUDA stream to synchronize)")
        except Exception as exc:  # reported in the table; the other loaders still run
            status, result = "FAILED", f"{type(exc).__name__}: {str(exc)[:200]}"
        bad += status in ("SYNCS", "FAILED")
        add_row(args.rows, "sync", name, status, time.perf_counter() - t0, result)

    # the trainer's own loop: forward, backward, clipping, optimizer and schedule, loss kept on the device
    t0 = time.perf_counter()
    try:
        cfg = fbconfig.load("config/smoke.yaml")
        spec = fbconfig.resolve_spec(cfg, "speech", "speech_gru", 0)
        spec["training"] = {**spec["training"], "batch_size": batch, "max_train_batches": steps, "grad_clip": 1.0}
        job = set_up(spec, data["spectrogram"], str(dev), 1)
        train_one_epoch(job, 1, False)  # warm-up: allocator, cuDNN autotuning
        with counting_syncs(dev) as seen:
            tr = train_one_epoch(job, 2, False)
        n_steps = math.ceil(tr["samples"] / batch)
        status = ("ok" if len(seen) <= 3 else "SYNCS") if cuda else "n/a on cpu"
        result = (f"{n_steps} steps (speech_gru, {job.precision}): {len(seen)} synchronizing call(s), ≤ 3 expected at "
                  f"the epoch's end{where_of(seen)}" if cuda else f"{n_steps} steps ran on the CPU")
    except Exception as exc:
        status, result = "FAILED", f"{type(exc).__name__}: {str(exc)[:200]}"
    bad += status in ("SYNCS", "FAILED")
    add_row(args.rows, "sync", "train_one_epoch", status, time.perf_counter() - t0, result)
    return 1 if bad else 0


# ---------------------------------------------------------------------------------------------------------------------
# asr-steps


def asr_steps(args) -> int:
    import torch
    from benchmark_time import librispeech_sizes, write_asr_prepared

    from finebench import config as fbconfig
    from finebench.train import set_up, train_one_epoch

    cfg = fbconfig.load(args.config)
    options = fbconfig.task_options(cfg, args.task)
    sizes = librispeech_sizes(options) or {"train": {"utterances": None}}
    dev = torch.device(args.device)
    failed = 0
    start = time.perf_counter()
    for model in args.models:
        t0 = time.perf_counter()
        if args.time_limit and t0 - start >= args.time_limit:
            add_row(args.rows, "asr steps", model, "SKIPPED", None, f"--time-limit {args.time_limit:.0f} s reached")
            continue
        try:
            spec = fbconfig.resolve_spec(cfg, args.task, model, 0)
            t = spec["training"]
            batch = args.batch_size or t["batch_size"]
            pool = min(args.steps, 25)  # distinct batches, cycled: 25 x 32 utterances = ~2.8 h of synthetic audio
            epochs = math.ceil(args.steps / pool) + 1
            spec["training"] = {**t, "batch_size": batch, "epochs": epochs + 1, "max_train_batches": pool}
            data_dir = Path(args.work) / f"asr.{batch * pool}.{args.duration_scale:g}"
            if not (data_dir / "manifest.json").is_file():
                write_asr_prepared(data_dir, options, {"train": batch * pool, "val": batch, "test": batch},
                                   waveform=spec["arch"].startswith("hf:"), duration_scale=args.duration_scale)
            job = set_up(spec, data_dir, args.device, args.threads)
            job.steps_per_epoch = args.warmup
            train_one_epoch(job, 1, False)  # warm-up: allocator, cuDNN autotuning
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            seconds = data_wait = 0.0
            samples = done = 0
            epoch = 2
            while done < args.steps and not (args.time_limit and time.perf_counter() - start >= args.time_limit):
                job.steps_per_epoch = min(pool, args.steps - done)
                tr = train_one_epoch(job, epoch, False)
                seconds += tr["train_seconds"]
                data_wait += tr["data_seconds"]
                samples += tr["samples"]
                done += job.steps_per_epoch
                epoch += 1
            if not done:
                raise TimeoutError(f"--time-limit {args.time_limit:.0f} s reached in the warm-up")
            audio = samples * float(job.data.manifest["splits"]["train"]["hours"]) * 3600 / (batch * pool)
            peak = f", peak {torch.cuda.max_memory_allocated(dev) / 2**30:.1f} GiB" if dev.type == "cuda" else ""
            epoch_min = (f"; a train-clean-100 epoch ({sizes['train']['utterances']:,} utterances) ≈ "
                         f"{sizes['train']['utterances'] / (samples / seconds) / 60:.1f} min"
                         if sizes["train"]["utterances"] else "")
            scaled = [f"batch {batch} (config {t['batch_size']})"] if batch != t["batch_size"] else []
            scaled += [f"utterances x {args.duration_scale:g} as long"] if args.duration_scale != 1 else []
            scaled = (f" — scaled for the CPU: {', '.join(scaled)}, so the epoch estimate means nothing"
                      if scaled else "")
            add_row(args.rows, "asr steps", f"{model} x {done} steps", "ok" if done == args.steps else "partial",
                    time.perf_counter() - t0,
                    f"batch {batch}, {job.precision}: {seconds / done:.3f} s/step, {samples / seconds:.1f} utt/s, "
                    f"{audio / seconds:.0f} s audio/s, data wait {100 * data_wait / seconds:.1f} %{peak}{epoch_min}"
                    f"{scaled}")
        except Exception as exc:
            late = isinstance(exc, TimeoutError)
            failed += not late
            add_row(args.rows, "asr steps", model, "TIMEOUT" if late else "FAILED", time.perf_counter() - t0,
                    str(exc) if late else f"{type(exc).__name__}: {str(exc)[:200]}")
        finally:
            job = None
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------------------------------
# Rows from the other sections' outputs


def smoke_rows(args) -> int:
    src = Path(args.csv)
    if src.is_dir():  # a Snakemake run's results/runs: every run's metrics.json
        t = pd.DataFrame([json.loads(p.read_text()) for p in sorted(src.glob("*/*/seed*/metrics.json"))])
    elif src.is_file():
        t = pd.read_csv(src)
    else:
        t = pd.DataFrame()
    log = Path(args.log).read_text(errors="replace") if args.log and Path(args.log).is_file() else ""
    problems = [ln.strip() for ln in log.splitlines() if " FAILED: " in ln or "ran on " in ln]
    late = [p for p in problems if "--time-limit" in p]  # not started, or stopped, at the time limit
    problems = [p for p in problems if p not in late]
    if t.empty:
        status = "TIMEOUT" if late and not problems else "FAILED"
        add_row(args.rows, args.section, "jobs", status, None, f"no finished job in {args.csv}"
                + (f"; {len(late)} not run within the section's time" if late else "")
                + (f"; {problems[0][:160]}" if problems else ""))
        return 1
    devices = sorted(t["device"].unique()) if "device" in t else []
    status = "FAILED" if problems or devices != [args.device] else "partial" if late else "ok"
    job_time = f"; {t['wall_s'].sum():.0f} s of job time" if "wall_s" in t else ""
    add_row(args.rows, args.section, f"{len(t)} jobs", status, None,
            f"devices {devices}; " + (f"{len(problems)} problem(s): {problems[0][:160]}" if problems else
                                      f"every job on {args.device}") + job_time
            + (f"; {len(late)} job(s) not run within the section's time" if late else "")
            + (f"; {args.note}" if args.note else ""))
    return 1 if status == "FAILED" else 0


def loop_rows(args) -> int:
    if not Path(args.csv).is_file():
        add_row(args.rows, "loop", args.setting, "FAILED", args.seconds, f"no table: {args.csv} (see {args.log})")
        return 1
    for r in pd.read_csv(args.csv).to_dict("records"):
        add_row(args.rows, "loop", f"{r['model']} {args.setting}", "ok", None,
                f"ratio {r['ratio']:.3f} (trainer {r['trainer_samples_per_s']:.1f}/s, model only "
                f"{r['model_only_samples_per_s']:.1f}/s), data wait {100 * r['data_wait_share']:.1f} %, "
                f"{r['precision']}, batch {r['batch']} x {r['steps']} steps" + (f"; {args.note}" if args.note else ""))
    return 0


def projection_rows(args) -> int:
    from benchmark_time import packed_minutes

    from finebench import config as fbconfig

    cfg = fbconfig.load(args.config)
    pairs = sum(len(fbconfig.task_models(cfg, task)) for task in cfg["tasks"])
    if not Path(args.csv).is_file():
        add_row(args.rows, "projection", "make benchmark", "FAILED", args.seconds,
                f"no table: {args.csv} (see {args.log})")
        return 1
    t = pd.read_csv(args.csv)
    total = t["minutes_all_seeds"].sum()
    runs = [m / n for m, n in zip(t["minutes_all_seeds"], t["seeds"]) for _ in range(int(n))]
    new = t[t["model"].isin([m for m, e in cfg["models"].items() if str(e.get("arch", "")).startswith("hf:")])
            | (t["kind"] == "asr")] if "kind" in t else t.iloc[:0]
    log = Path(args.log).read_text(errors="replace") if args.log and Path(args.log).is_file() else ""
    late = [ln for ln in log.splitlines() if "not measured (--time-limit" in ln]
    failed = [ln for ln in log.splitlines() if "not in the projection (failed)" in ln]
    status = "ok" if len(t) == pairs else "partial"
    add_row(args.rows, "projection", "make benchmark", status, args.seconds,
            f"{len(t)} of {pairs} task x model pairs ({int(t['seeds'].sum())} runs): {total / 60:.1f} h on one "
            f"device, {packed_minutes(runs, 4) / 60:.1f} h on 4; hf: and speech recognition "
            f"{new['minutes_all_seeds'].sum() / 60:.1f} h of it; measured on "
            f"{', '.join(sorted(t['device'].astype(str).unique()))}"
            + "".join(f"; {ln.strip()[:200]}" for ln in late + failed) + (f"; {args.note}" if args.note else ""))
    for kind, part in t.groupby("kind", sort=False) if "kind" in t else []:
        longest = part.loc[part["minutes_per_run"].idxmax()]
        add_row(args.rows, "projection", f"{kind} ({len(part)} pairs)", "ok", None,
                f"{part['minutes_all_seeds'].sum() / 60:.1f} h; longest run {longest['task']}/{longest['model']} "
                f"{longest['minutes_per_run']:.0f} min")
    return 0


# ---------------------------------------------------------------------------------------------------------------------
# The table


def table(args) -> int:
    path = Path(args.rows_file)
    rows = [ln.rstrip("\n").split("\t") for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()] \
        if path.is_file() else []
    rows = [(r + [""] * len(COLUMNS))[: len(COLUMNS)] for r in rows]
    sections = list(dict.fromkeys(r[0] for r in rows))  # in the order they ran; each one's own row first
    rows.sort(key=lambda r: (sections.index(r[0]), r[1] != "(section)"))
    lines = [f"| {' | '.join(COLUMNS)} |", f"|{'|'.join('---' for _ in COLUMNS)}|"]
    lines += [f"| {' | '.join(c.replace('|', '/') for c in r)} |" for r in rows]
    text = "\n".join(lines)
    print(text)
    for out in args.md or []:
        Path(out).write_text(text + "\n", encoding="utf-8")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("rnn-dtype")
    s.add_argument("--device", default="cuda")
    s.add_argument("--rows")
    s = sub.add_parser("sync")
    s.add_argument("--device", default="cuda")
    s.add_argument("--steps", type=int, default=20)
    s.add_argument("--batch", type=int, default=16)
    s.add_argument("--work", default="/tmp/finebench-gpu-check/sync")
    s.add_argument("--rows")
    s = sub.add_parser("asr-steps")
    s.add_argument("--config", default="config/benchmark.yaml")
    s.add_argument("--task", default="librispeech100")
    s.add_argument("--models", nargs="*", default=["ds2", "quartznet", "conformer"])
    s.add_argument("--steps", type=int, default=200)
    s.add_argument("--warmup", type=int, default=3)
    s.add_argument("--batch-size", type=int, help="default: the config's (smaller only to rehearse on a CPU)")
    s.add_argument("--duration-scale", type=float, default=1.0,
                   help="utterance durations times this (below 1 only to rehearse on a CPU)")
    s.add_argument("--device", default="cuda")
    s.add_argument("--threads", type=int, default=4)
    s.add_argument("--work", default="/tmp/finebench-gpu-check/asr")
    s.add_argument("--time-limit", type=float, help="seconds: no model started, no step begun after this")
    s.add_argument("--rows")
    for name in ("smoke-rows", "loop-rows", "projection-rows"):
        s = sub.add_parser(name)
        s.add_argument("csv")
        s.add_argument("--log")
        s.add_argument("--rows")
        s.add_argument("--seconds", type=float)
        s.add_argument("--note", default="")
        s.add_argument("--device", default="cuda")
        s.add_argument("--section", default="smoke")
        s.add_argument("--setting", default="")
        s.add_argument("--config", default="config/benchmark.yaml")
    s = sub.add_parser("row")
    for name in COLUMNS:
        s.add_argument(name)
    s.add_argument("--rows")
    s = sub.add_parser("table")
    s.add_argument("rows_file")
    s.add_argument("--md", nargs="*")
    args = ap.parse_args()
    if args.command == "row":
        add_row(args.rows, args.section, args.item, args.status, args.seconds or None, args.result)
        return 0
    return {"rnn-dtype": rnn_dtype, "sync": sync_check, "asr-steps": asr_steps, "smoke-rows": smoke_rows,
            "loop-rows": loop_rows, "projection-rows": projection_rows, "table": table}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
