"""When the trainer (finebench.train) writes its resumable ``checkpoint.pt``: on a time interval, when Slurm warns
that the time limit is near, and at the end — not after every epoch.

    training:
      checkpoint_minutes: 5    # at most one checkpoint.pt per 5 minutes of a run's process; 0: after every epoch

Every epoch used to end with the whole state — weights, the optimizer's moments (AdamW: twice the weights) and a
second copy of the best weights: about 485 GB of writes for the benchmark's vision runs alone, where an epoch of
Flowers-102 takes under a second of GPU time (issue 33 item 5). Now, at the end of an epoch, :meth:`SaveSchedule.due`
says whether to write one:

- ``checkpoint_minutes`` have passed since the last save (or since this process started training): a kill -9, a
  node failure or a preemption loses at most that much training plus one epoch;
- Slurm's warning signal arrived (``SIGURG``, asked for by ``workflow/profiles/slurm``; ``SIGUSR1`` too, for a
  ``kill -USR1 PID`` by hand): the handler only sets a flag, the save comes at the end of the current epoch, and
  training carries on until Slurm ends the job at its limit; the retry resumes from that save. Why SIGURG and not
  USR1 on Slurm: see the profile (``slurm_extra``) — every process of the job step gets the signal, and only for
  SIGURG is "ignore" the default of the ones that do not handle it (Snakemake, the shell);
- after the last epoch ``finished.pt`` (the best weights, no optimizer) replaces it in any case, and with
  ``training.keep_checkpoint`` the whole last ``checkpoint.pt`` is written then.

The best epoch's weights are kept in memory on the CPU (no optimizer state, one copy) and go into a checkpoint only
when they are not the model's own weights at that point (``best_is_model``): no checkpoint holds them twice.
``metrics.json`` records ``checkpoint_bytes_written``: every checkpoint save of the run, over all its processes.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

# The signals that ask for a checkpoint at the end of the current epoch (the process carries on).
SAVE_SIGNALS = ("SIGURG", "SIGUSR1")
_requested: list[str] = []  # names of the signals received since the last save (set by the handler, nothing else)
_installed: list[bool] = []


def _request(signum, frame) -> None:
    """Only note it: saving inside a handler could interrupt a half-done optimizer step or a write in progress."""
    _requested.append(signal.Signals(signum).name)


def install_handlers() -> None:
    """Handle :data:`SAVE_SIGNALS` for the rest of the process (once; a no-op outside the main thread, where Python
    cannot set handlers). They stay installed between runs of one process (``train-trials``): a warning that arrives
    between two trials is kept for the next one, which saves after its first epoch."""
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    for name in SAVE_SIGNALS:
        if hasattr(signal, name):  # not on Windows
            signal.signal(getattr(signal, name), _request)
    _installed.append(True)


class SaveSchedule:
    """Whether to write the resumable checkpoint at the end of an epoch. ``minutes``: ``training.checkpoint_minutes``
    (0: every epoch); ``keep``: ``training.keep_checkpoint`` (the last epoch writes the whole checkpoint too)."""

    def __init__(self, minutes: float, keep: bool = False, clock=time.monotonic):
        install_handlers()
        self.seconds, self.keep, self.clock = 60.0 * minutes, keep, clock
        self.last = clock()

    def due(self, epoch: int, epochs: int) -> str | None:
        """Why epoch ``epoch`` (of ``epochs``) ends with a checkpoint, or None."""
        if epoch >= epochs:  # finished.pt follows at once (keep_checkpoint: the whole checkpoint.pt)
            return "the last epoch" if self.keep else None
        if _requested:
            return _requested[-1]
        if self.clock() - self.last >= self.seconds:
            return f"{self.seconds / 60:g} min since the last save" if self.seconds else "every epoch"
        return None

    def saved(self, name: str, epoch: int, size: int) -> None:
        """After a save of ``size`` bytes: the interval starts again. A signalled save says so in the log (interval
        saves are silent: a resumed run's first line names the epoch it continues after)."""
        if _requested:
            print(f"[finebench] {name}: checkpoint after epoch {epoch} on {_requested[-1]} (the time limit is near; "
                  f"{size / 2**20:.1f} MiB) — training on until the job is stopped; its rerun resumes from here",
                  file=sys.stderr, flush=True)
        self.last = self.clock()
        _requested.clear()
