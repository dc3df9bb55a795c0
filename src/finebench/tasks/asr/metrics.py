"""Speech-recognition scores: WER and CER the sclite way, with jiwer; greedy CTC decoding.

- **Normalisation**: references and hypotheses are both in the form of finebench.data.asr.normalize_transcript
  (the prepared transcripts already are; a hypothesis is spelled from the vocabulary, so only its spaces need
  collapsing: :func:`clean`).
- **WER** = (substitutions + deletions + insertions) summed over every utterance ÷ reference words summed over every
  utterance (jiwer.process_words on the whole list: one Levenshtein alignment per utterance, totals summed) — not
  the mean of per-utterance WERs. It can exceed 1 (insertions).
- **CER** likewise over characters, the spaces between words counted as characters (jiwer.process_characters).
- **Per utterance** (:func:`utterance_errors`): each utterance's word and character errors from the same alignments,
  so that the errors of ``hypotheses.csv`` sum exactly to the totals behind WER and CER.
- **Decoding**: greedy (best path): the most probable symbol per output frame, repeats merged, blanks removed.
"""

from __future__ import annotations

import numpy as np

DECODING = "greedy CTC (best path: argmax per frame, repeats merged, blanks removed); no language model"


def clean(text: str) -> str:
    return " ".join(text.split())


def greedy_decode(frame_ids, length: int, blank: int = 0) -> list[int]:
    """Best-path CTC decoding of one utterance's argmax ids (its first ``length`` frames)."""
    out, prev = [], None
    for i in list(frame_ids[:length]):
        i = int(i)
        if i != prev and i != blank:
            out.append(i)
        prev = i
    return out


def _errors(alignments) -> list[int]:
    """Per-utterance S + D + I from jiwer's alignment chunks."""
    out = []
    for chunks in alignments:
        n = 0
        for c in chunks:
            if c.type in ("substitute", "delete"):
                n += c.ref_end_idx - c.ref_start_idx
            elif c.type == "insert":
                n += c.hyp_end_idx - c.hyp_start_idx
        out.append(n)
    return out


def utterance_errors(refs: list[str], hyps: list[str]) -> dict:
    """Word and character errors of every utterance and the sclite-style totals.

    Returns ``{"wer", "cer", "word_errors": [...], "ref_words": [...], "char_errors": [...], "ref_chars": [...],
    "substitutions", "deletions", "insertions"}`` (the last three: word level). An empty hypothesis is all
    deletions; references are never empty (the prepared form rejects empty transcripts)."""
    import jiwer

    refs, hyps = [clean(r) for r in refs], [clean(h) for h in hyps]
    if not refs:
        raise ValueError("no utterances to score")
    if any(not r for r in refs):
        raise ValueError("an empty reference transcript cannot be scored (WER has no denominator)")
    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    ref_words, ref_chars = [len(r.split()) for r in refs], [len(r) for r in refs]
    word_errors, char_errors = _errors(words.alignments), _errors(chars.alignments)
    assert sum(word_errors) == words.substitutions + words.deletions + words.insertions
    return {"wer": sum(word_errors) / sum(ref_words), "cer": sum(char_errors) / sum(ref_chars),
            "word_errors": word_errors, "ref_words": ref_words, "char_errors": char_errors, "ref_chars": ref_chars,
            "substitutions": words.substitutions, "deletions": words.deletions, "insertions": words.insertions}


def linearised_wer(word_errors, ref_words) -> np.ndarray:
    """Per-utterance values whose mean is the corpus WER R = Σ e / Σ n and whose spread is the delta-method
    (linearised) spread of that ratio: z_i = R + (e_i − R n_i) / n̄. The report's per-example scores (its test-sample
    interval and paired test): an utterance counts by how far its errors are from R times its length, so long and
    short utterances weigh as they do in the ratio; the same for CER with characters."""
    e, n = np.asarray(word_errors, float), np.asarray(ref_words, float)
    r = e.sum() / n.sum()
    return r + (e - r * n) / n.mean()
