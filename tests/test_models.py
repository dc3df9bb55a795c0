import pytest
import torch

from finebench.errors import ConfigError
from finebench.models import ARCHS, build_model, check_arch

IMAGE = {"kind": "image", "channels": 1, "height": 32, "width": 64}
SPEC = {"kind": "spectrogram", "channels": 1, "n_mels": 40, "frames": 50}
TOKENS = {"kind": "tokens", "vocab_size": 50, "pad_id": 0, "max_len": 24}
INPUTS = {"vision": IMAGE, "speech": SPEC, "text": TOKENS}


def example(info, batch=3):
    if info["kind"] == "tokens":
        x = torch.randint(1, info["vocab_size"], (batch, 12))
        x[1, 7:] = 0  # a shorter sequence
        return x
    h, w = (info["height"], info["width"]) if info["kind"] == "image" else (info["n_mels"], info["frames"])
    return torch.randn(batch, info["channels"], h, w)


CASES = [(name, modality) for name, arch in sorted(ARCHS.items()) for modality in arch.modalities
         if arch.task_type == "classification"]  # super-resolution archs: tests/test_superres.py
CASES += [("timm:resnet18", "vision"), ("timm:vit_tiny_patch16_224", "vision"), ("timm:resnet18", "speech")]


@pytest.mark.parametrize("arch,modality", CASES)
def test_every_registered_arch_trains_one_step(arch, modality):
    """Like timm: every registry entry gets a forward/backward test for free."""
    info = INPUTS[modality]
    kw = {"depth": 1, "embed_dim": 32, "num_heads": 2, "patch_size": 8} if "vit" in arch else {}
    model = build_model(arch, kw, info, num_classes=7)
    x = example(info)
    out = model(x)
    assert out.shape == (3, 7)
    out.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("arch", ["textcnn", "birnn", "transformer"])
def test_padding_does_not_change_text_model_output(arch):
    torch.manual_seed(0)
    kw = {"cell": "gru"} if arch == "birnn" else {}
    model = build_model(arch, kw, TOKENS, num_classes=5).eval()
    seqs = torch.randint(1, 50, (4, 9))
    seqs[0, 2:] = 0  # a 2-token sequence (shorter than the widest TextCNN filter)
    seqs[1, 6:] = 0
    with torch.no_grad():
        ref = model(seqs)
        padded = model(torch.cat([seqs, torch.zeros(4, 15, dtype=torch.long)], 1))
        alone = model(seqs[:1, :2])  # the same first sequence with no padding at all
    torch.testing.assert_close(padded, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(alone, ref[:1], rtol=1e-5, atol=1e-5)


def test_timm_models_get_task_channels_classes_and_size():
    vit = build_model("timm:vit_tiny_patch16_224", {"patch_size": [4, 8], "depth": 1}, IMAGE, 11)
    assert vit.patch_embed.img_size == (32, 64) and vit.patch_embed.proj.in_channels == 1
    assert vit(example(IMAGE)).shape == (3, 11)
    kwt = build_model("timm:vit_tiny_patch16_224", {"patch_size": [40, 1], "depth": 1}, SPEC, 35)
    assert kwt.patch_embed.num_patches == 50


def test_bad_builtin_option_is_a_clear_error():
    from finebench.errors import FinebenchError

    with pytest.raises(FinebenchError, match="architecture 'crnn': bad option"):
        build_model("crnn", {"hiden": 3}, IMAGE, 3)


def test_timm_on_text_is_rejected():
    with pytest.raises(ConfigError, match="not token sequences"):
        check_arch("timm:resnet18", "text", key="models.x.arch")


def test_flops_count_recurrent_and_attention_layers():
    from finebench.cost import flops_per_sample, trim_padding

    x = torch.randint(1, 50, (2, 10))
    lstm = build_model("birnn", {"embed_dim": 16, "hidden": 8}, TOKENS, 5)
    # 2 directions x 10 steps x 2 FLOPs x (4*8*16 + 4*8*8) weights, plus the 16->5 head
    assert flops_per_sample(lstm, x, trim_padding()) == 2 * 10 * 2 * (4 * 8 * 16 + 4 * 8 * 8) + 2 * 16 * 5
    enc = build_model("transformer", {"dim": 16, "depth": 1, "heads": 2, "mlp_ratio": 2.0}, TOKENS, 5)
    # per token: qkv + out projections (4 d^2) and the MLP (2 * 2 d^2), 2 FLOPs each; attention on top
    assert flops_per_sample(enc, x, trim_padding()) > 2 * 10 * (4 * 16 * 16 + 4 * 16 * 16)
    padded = torch.cat([x, torch.zeros(2, 6, dtype=torch.long)], 1)
    assert flops_per_sample(enc, padded, trim_padding()) == flops_per_sample(enc, x, trim_padding())
    # a tokenizer that pads with id 1 (RoBERTa) and a text holding that id inside: counted at its own 10 tokens
    inner = x.clone()
    inner[:, 3] = 1
    padded1 = torch.cat([inner, torch.ones(2, 6, dtype=torch.long)], 1)
    assert flops_per_sample(enc, padded1, trim_padding(1)) == flops_per_sample(enc, inner, trim_padding(1))


def test_token_batches_keep_texts_that_contain_the_pad_id():
    from finebench.loader import to_model_input

    x = torch.tensor([[5, 0, 7, 0, 0], [3, 0, 0, 0, 0]])  # GPT-2 style: the pad id (0) also inside the first text
    assert to_model_input(x, {"kind": "tokens", "pad_id": 0}).tolist() == [[5, 0, 7], [3, 0, 0]]
    assert to_model_input(torch.ones(2, 4, dtype=torch.long), {"kind": "tokens", "pad_id": 1}).shape == (2, 1)


def test_pretrained_timm_models_bring_their_own_preprocessing(tmp_path):
    """Normalisation comes from the weights' config: ViT augreg weights expect mean = std = 0.5 and bicubic
    resizing, a ResNet the ImageNet statistics; a model trained from scratch gets the [-1, 1] default."""
    import timm

    from finebench.models import preprocessing

    rgb = {"kind": "image", "channels": 3, "height": 32, "width": 32}
    for name, mean, std, interp in (("vit_tiny_patch16_224.augreg_in21k_ft_in1k", (0.5,) * 3, (0.5,) * 3, "bicubic"),
                                    ("resnet18.a1_in1k", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bicubic")):
        weights = tmp_path / f"{name}.pth"
        torch.save(timm.create_model(name, num_classes=4).state_dict(), weights)  # a local file: no network
        kw = {"pretrained_file": str(weights), **({"patch_size": 8} if "vit" in name else {})}
        model = build_model(f"timm:{name}", kw, rgb, 4)
        pre = preprocessing(f"timm:{name}", kw, model)
        assert (pre["mean"] == pytest.approx(mean) and pre["std"] == pytest.approx(std)
                and pre["interpolation"] == interp)
    scratch = build_model("timm:resnet18", {}, rgb, 4)
    assert preprocessing("timm:resnet18", {}, scratch)["mean"] == (0.5,)


def test_weight_decay_spares_position_embeddings_tokens_biases_and_norms():
    from finebench.models import param_groups

    for arch, kw, info, exempt in (
        ("timm:vit_tiny_patch16_224", {"depth": 1, "embed_dim": 32, "num_heads": 2, "patch_size": 8}, IMAGE,
         {"pos_embed", "cls_token"}),
        ("transformer", {"dim": 16, "depth": 1, "heads": 2, "pool": "cls"}, TOKENS, {"pos", "cls"}),
    ):
        model = build_model(arch, kw, info, 5)
        decay, no_decay = param_groups(model, 0.05)
        names = {id(p): n for n, p in model.named_parameters()}
        decayed = {names[id(p)] for p in decay["params"]}
        assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
        assert exempt <= {names[id(p)] for p in no_decay["params"]} and not exempt & decayed
        assert all(not n.endswith(".bias") and "norm" not in n for n in decayed)
        assert any(n.endswith("weight") for n in decayed)  # the projections are decayed


@pytest.mark.parametrize("arch,option,hint", [("crnn", "hiddne", "hidden"),
                                              ("timm:vit_tiny_patch16_224", "embed_dims", "embed_dim"),
                                              ("textcnn", "famly", "family")])
def test_builder_options_are_checked_with_did_you_mean(arch, option, hint):
    from finebench.config import MODEL_RESERVED_KEYS, PROBE_INPUTS
    from finebench.models import ARCHS, check_options

    modality = "vision" if arch.startswith("timm:") else ARCHS[arch].modalities[0]
    with pytest.raises(ConfigError, match=rf"^models\.m\.{option}: not an option of .*did you mean '{hint}'"):
        check_options(arch, {option: 3}, PROBE_INPUTS[modality], key="models.m", reserved=sorted(MODEL_RESERVED_KEYS))
    check_options(arch, {}, PROBE_INPUTS[modality], key="models.m")  # no options: fine
