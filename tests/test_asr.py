"""Speech recognition (task type asr): the transcript rule, WER / CER against hand-computed cases, greedy CTC
decoding, the prepared form, bad input named before training, the three acoustic models."""

import json

import numpy as np
import pytest

from finebench.data.asr import ASRData, GrowingNpy, normalize_transcript, vocabulary, write_asr
from finebench.errors import FinebenchError
from finebench.tasks.asr.metrics import greedy_decode, linearised_wer, utterance_errors

OPT = {"sample_rate": 16000, "n_fft": 400, "hop": 160, "n_mels": 40}


@pytest.mark.parametrize("raw, normal", [
    ("Hello, World!", "hello world"),
    ("  It’s   UP-to-date. ", "it's up to date"),
    ("\"Quoted\" (words); semi: colon?", "quoted words semi colon"),
    ("ÉCOLE", "école"),  # letters stay (and are then outside the default vocabulary)
    ("...", ""),
])
def test_the_transcript_normaliser(raw, normal):
    assert normalize_transcript(raw) == normal


def test_wer_and_cer_are_summed_over_utterances_as_sclite_does():
    # utterance 1: "three tree bed" -> "three bed bird": 2 word edits (Levenshtein), of 3 words
    # utterance 2: "go no" -> "go": 1 deletion, of 2 words. Corpus WER = 3 / 5, not the mean of 2/3 and 1/2.
    s = utterance_errors(["three tree bed", "go no"], ["three bed bird", "go"])
    assert s["word_errors"] == [2, 1] and s["ref_words"] == [3, 2]
    assert s["wer"] == pytest.approx(3 / 5)
    assert s["deletions"] + s["substitutions"] + s["insertions"] == 3
    # characters (the space counts): "bed" -> "bird" = e->i and an inserted r (2 of 3); "go no" -> "go" = 3 deleted
    c = utterance_errors(["bed", "go no"], ["bird", "go"])
    assert c["char_errors"] == [2, 3] and c["ref_chars"] == [3, 5]
    assert c["cer"] == pytest.approx(5 / 8)
    assert c["wer"] == pytest.approx(2 / 3)


def test_insertions_can_take_wer_over_one_and_an_empty_hypothesis_is_all_deletions():
    assert utterance_errors(["up"], ["up up up"])["wer"] == pytest.approx(2.0)
    s = utterance_errors(["six seven eight"], [""])
    assert s["wer"] == 1.0 and s["deletions"] == 3 and s["cer"] == 1.0
    assert utterance_errors(["go"], ["  go  "])["wer"] == 0.0  # spaces collapsed before scoring
    with pytest.raises(ValueError, match="empty reference"):
        utterance_errors([""], ["go"])


def test_per_utterance_scores_average_to_the_corpus_wer_and_spread_as_the_ratio_does():
    s = utterance_errors(["three tree bed", "go no", "on off up down"], ["three bed bird", "go", "on of up"])
    assert s["word_errors"] == [2, 1, 2] and s["wer"] == pytest.approx(5 / 9)
    z = linearised_wer(s["word_errors"], s["ref_words"])
    # z_i = R + (e_i - R n_i) / mean(n), R = 5/9, mean(n) = 3
    assert z == pytest.approx([5 / 9 + (2 - 5 / 9 * 3) / 3, 5 / 9 + (1 - 5 / 9 * 2) / 3, 5 / 9 + (2 - 5 / 9 * 4) / 3])
    assert z.mean() == pytest.approx(s["wer"])
    # errors in proportion to length: every utterance is at the corpus rate, no test-sample spread
    assert np.ptp(linearised_wer([1, 2, 4], [2, 4, 8])) == pytest.approx(0)


def test_greedy_ctc_decoding_merges_repeats_then_drops_blanks():
    # frames: blank a a blank a b b blank -> "aab"; a repeat separated by a blank is two letters
    assert greedy_decode([0, 3, 3, 0, 3, 4, 4, 0], 8) == [3, 3, 4]
    assert greedy_decode([3, 3, 4, 4, 5], 3) == [3, 4]  # only the first `length` frames
    assert greedy_decode([0, 0, 0], 3) == []


def test_a_growing_npy_file_reads_back_as_one_array(tmp_path):
    g = GrowingNpy(tmp_path / "a.npy", np.float16, (3,))
    assert g.append(np.ones((2, 3))) == 0 and g.append(np.arange(12).reshape(4, 3)) == 2
    g.close()
    a = np.load(tmp_path / "a.npy", mmap_mode="r")
    assert a.shape == (6, 3) and a.dtype == np.float16 and a[2:].ravel().tolist() == list(range(12))


def utterances(texts, seconds=0.5, speaker="s1"):
    rng = np.random.default_rng(0)
    return [{"id": f"u{i}", "speaker": speaker, "text": t, "where": f"list.csv:{i + 2}",
             "audio": rng.normal(0, 0.1, int(seconds * 16000)).astype(np.float32), "audio_rate": 16000}
            for i, t in enumerate(texts)]


def prepared(tmp_path, splits, **opt):
    out = write_asr(tmp_path, splits, {**OPT, **opt}, {"layout": "test"})
    manifest = {**out["manifest"], "splits": out["splits"], "task_type": "asr"}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return ASRData(tmp_path)


def test_the_prepared_form_keeps_variable_lengths_transcripts_and_statistics(tmp_path):
    data = prepared(tmp_path, {"train": utterances(["Go, no!", "three tree"], 0.5),
                               "val": utterances(["up"], 0.3), "test": utterances(["bed bird", "off"], 0.8)})
    assert data.count("train") == 2 and data.count("test") == 2
    assert data.features("train", 0).shape == (50, 40) and data.features("test", 1).shape == (80, 40)
    vocab = vocabulary()
    assert "".join(vocab[i] for i in data.labels("train", 0)) == "go no"
    assert data.utterances("test")["text"].tolist() == ["bed bird", "off"]
    assert data.waveform("val", 0).shape == (4800,)
    train = np.concatenate([data.features("train", i) for i in range(2)])
    assert np.allclose(train.mean(0), 0, atol=1e-2) and np.allclose(train.std(0), 1, atol=1e-2)


def test_bad_transcripts_are_named_with_their_file_and_line(tmp_path):
    ok = {"val": utterances(["up"]), "test": utterances(["up"])}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(FinebenchError,
                       match=r"list.csv:3: transcript 'room 101' has characters outside the vocabulary.*'1'"):
        write_asr(tmp_path / "a", {"train": utterances(["go", "room 101"]), **ok}, OPT, {})
    with pytest.raises(FinebenchError, match=r"list.csv:2: empty transcript for utterance 'u0'"):
        write_asr(tmp_path / "b", {"train": utterances(["?!"]), **ok}, OPT, {})


def test_audio_over_max_seconds_is_named_or_skipped_and_counted(tmp_path):
    splits = {"train": utterances(["go", "no"], 0.5),
              "val": utterances(["up"]), "test": utterances(["up"])}
    splits["train"].append({**utterances(["far too long"], 3.0)[0], "id": "long", "where": "list.csv:9"})
    (tmp_path / "a").mkdir()
    with pytest.raises(FinebenchError, match=r"list.csv:9: utterance 'long' is 3.0 s long, over .*max_seconds \(2\)"):
        write_asr(tmp_path / "a", splits, {**OPT, "max_seconds": 2}, {})
    (tmp_path / "b").mkdir()
    out = write_asr(tmp_path / "b", splits, {**OPT, "max_seconds": 2, "skip_long": True}, {})
    assert out["splits"]["train"]["n"] == 2 and out["manifest"]["skipped"]["too_long"]["n"] == 1


ASR_ARCHS = ["quartznet", "ds2", "conformer"]


@pytest.mark.parametrize("arch, options", [(a, {}) for a in ASR_ARCHS] + [("ds2", {"cell": "lstm", "layers": 2})])
def test_every_asr_model_maps_padded_frames_to_per_frame_logits(arch, options):
    import torch

    from finebench.models import ARCHS, build_model
    from finebench.tasks.asr.objective import Padded

    assert ARCHS[arch].task_type == "asr"
    torch.manual_seed(0)
    model = build_model(arch, options, {"kind": "asr_features", "n_mels": 40}, 29)
    lengths = torch.tensor([37, 20])
    values = torch.randn(2, 37, 40)
    values[1, 20:] = 0  # the loader pads with zeros (the train mean, after standardisation)
    x = Padded(values, lengths)
    logits, out_len = model(x)
    assert logits.shape[0] == 2 and logits.shape[2] == 29 and logits.shape[1] == int(out_len.max())
    assert out_len.tolist() == model.output_lengths(lengths).tolist() == [19, 10]
    logits.sum().backward()
    # padding does not leak: the shorter utterance's logits are the same alone as beside a longer one
    model.eval()
    with torch.no_grad():
        alone, _ = model(x[1:2])
        both, _ = model(x)
    assert torch.allclose(alone[0, :10], both[1, :10], atol=1e-4)


def test_a_transcript_longer_than_the_models_output_frames_is_named_before_training(tmp_path):
    from finebench.models import build_model
    from finebench.tasks.asr.objective import check_alignable, ctc_frames_needed

    assert ctc_frames_needed(np.array([3, 3, 4])) == 4  # a doubled letter needs a blank between
    data = prepared(tmp_path, {"train": utterances(["go"], 0.5), "val": utterances(["up"], 0.5),
                               "test": utterances(["three seven eleven", "no"], 0.2)})
    ok = build_model("conformer", {"subsampling": 2}, data.input, len(data.vocab))
    check_alignable(ok, data, ("train", "val"))
    coarse = build_model("conformer", {"subsampling": 4}, data.input, len(data.vocab))
    with pytest.raises(FinebenchError, match=r"test utterance 'u0' \(0.20 s, 18 characters.*needs 19 output frames for "
                                             r"CTC, but this model gives 5"):
        check_alignable(coarse, data)


def test_training_batches_are_cut_by_length_within_pools_and_cover_every_utterance_once(tmp_path):
    import torch

    from finebench.tasks.asr.objective import ASRLoader

    seconds = [0.1 * (1 + (7 * i) % 40) for i in range(40)]  # 40 utterances of 0.1-4.0 s, in a scrambled order
    train = [{**utterances(["go no"], s)[0], "id": f"u{i}"} for i, s in enumerate(seconds)]
    data = prepared(tmp_path, {"train": train, "val": utterances(["up"]), "test": utterances(["up"])})
    lengths = data.index("train")[:, 1]

    def padded_frames(buckets, seed=0):
        loader = ASRLoader(data, "train", 4, "cpu", train=True, generator=torch.Generator().manual_seed(seed),
                           buckets=buckets)
        batches = loader.batches()
        assert sorted(np.concatenate(batches).tolist()) == list(range(40))  # each utterance exactly once
        return sum(int(lengths[b].max()) * len(b) for b in batches), batches

    plain, _ = padded_frames(1)
    pooled, batches = padded_frames(5)  # pools of 5 batches = 20 utterances
    whole, _ = padded_frames(10)  # one pool: the split sorted by length
    assert whole == sum(int(lengths[b].max()) * 4 for b in np.argsort(lengths, kind="stable").reshape(10, 4))
    assert lengths.sum() <= whole <= pooled < plain  # less padding the larger the pool
    # Reproducible from the run's generator, and another seed gives other batches.
    assert [b.tolist() for b in padded_frames(5)[1]] == [b.tolist() for b in batches]
    assert [b.tolist() for b in padded_frames(5, seed=1)[1]] != [b.tolist() for b in batches]
    # Evaluation keeps the prepared order whatever the option.
    loader = ASRLoader(data, "train", 16, "cpu", buckets=5)
    assert [b.tolist() for b in loader.batches()] == [list(range(16)), list(range(16, 32)), list(range(32, 40))]


def test_spec_augment_masks_asr_training_features_within_each_utterance_only_when_asked(tmp_path):
    import torch

    from finebench.tasks.asr.objective import ASRLoader

    data = prepared(tmp_path, {"train": utterances(["go", "no", "up", "off"], 1.0), "val": utterances(["up"]),
                               "test": utterances(["up"])})
    aug = {"freq_masks": 1, "freq_width": 10, "time_masks": 0, "time_width": 1}

    def first(spec_aug, train=True):
        loader = ASRLoader(data, "train", 4, "cpu", train=train, generator=torch.Generator().manual_seed(0),
                           spec_aug=spec_aug)
        return next(iter(loader))[0].values

    plain, masked = first(None), first(aug)
    zeroed = (masked == 0) & (plain != 0)
    assert zeroed.any() and torch.equal(masked[~zeroed], plain[~zeroed])
    bands = zeroed.all(1)  # [B, n_mels]: a masked mel band is zero over every frame of its utterance
    assert bands.any(1).any() and (bands.sum(1) <= 10).all() and torch.equal(zeroed, bands[:, None].expand_as(zeroed))

