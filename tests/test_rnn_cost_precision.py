"""Recurrent layers on a GPU, checked on the CPU (#33 items 2, 3): their FLOPs are counted from their shapes whatever
kernel ran them (cuDNN's ``_cudnn_rnn`` has no FlopCounterMode formula), and under bf16 autocast they run in float32
(cuDNN's autocast would run them in fp16). tests/benchmarks/gpu_check.sh confirms the fp16 reading on a GPU."""

import copy
import pickle

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.flop_counter import FlopCounterMode

from finebench.cost import flops_per_sample, recurrent_flops, recurrent_layers_by_shape
from finebench.models.precision import Float32GRU, Float32LSTM, fp32_recurrent

I, H, B, T = 5, 7, 3, 6  # input size, hidden size, batch, padded length  # noqa: E741 (the formulas' I)
LENGTHS = torch.tensor([6, 4, 2])  # packed: 12 time steps in all, against 18 padded

# Per direction and time step, 2 FLOPs per weight: gates x H x (layer input + H); layer 2's input is 2 directions x H.
LSTM_WEIGHTS = 4 * H * (I + H) + 4 * H * (2 * H + H)  # 336 + 588 = 924
GRU_WEIGHTS = 3 * H * (I + H) + 3 * H * (2 * H + H)  # 252 + 441 = 693
HAND = {  # 2 FLOPs x steps x 2 directions x weights
    ("lstm", "padded"): 2 * B * T * 2 * LSTM_WEIGHTS,  # 66,528
    ("lstm", "packed"): 2 * 12 * 2 * LSTM_WEIGHTS,  # 44,352
    ("gru", "padded"): 2 * B * T * 2 * GRU_WEIGHTS,  # 49,896
    ("gru", "packed"): 2 * 12 * 2 * GRU_WEIGHTS,  # 33,264
}


def rnn(cell: str, **kw) -> nn.RNNBase:
    torch.manual_seed(0)
    return {"lstm": nn.LSTM, "gru": nn.GRU}[cell](I, H, num_layers=2, bidirectional=True, batch_first=True, **kw)


def inputs(packing: str):
    torch.manual_seed(1)
    x = torch.randn(B, T, I)
    return x if packing == "padded" else pack_padded_sequence(x, LENGTHS, batch_first=True)


def counted(model, x, custom_mapping=None) -> int:
    with (torch.no_grad(), FlopCounterMode(display=False, custom_mapping=custom_mapping or {}) as counter,
          recurrent_layers_by_shape(model, counter) as correction):
        model(x)
    return counter.get_total_flops() + correction[0]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("packing", ["padded", "packed"])
def test_recurrent_flops_match_the_hand_count(cell, packing):
    m = rnn(cell).eval()
    x = inputs(packing)
    assert recurrent_flops(m, x) == HAND[cell, packing]
    # the same from the weights themselves: every weight matrix, once per time step
    steps = 12 if packing == "packed" else B * T
    assert HAND[cell, packing] == 2 * steps * sum(p.numel() for n, p in m.named_parameters() if n.startswith("weight"))
    assert counted(m, x) == HAND[cell, packing]


def test_an_lstm_with_projections_and_an_unbatched_sequence():
    m = nn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=3)  # layer 2's input: 2 directions x 3
    per_direction = (4 * H * (I + 3) + 3 * H) + (4 * H * (2 * 3 + 3) + 3 * H)  # 245 + 273 = 518
    assert recurrent_flops(m, torch.randn(T, B, I)) == 2 * B * T * 2 * per_direction == 37_296
    assert recurrent_flops(nn.GRU(I, H), torch.randn(T, I)) == 2 * T * 3 * H * (I + H) == 3_024


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("packing", ["padded", "packed"])
def test_the_count_does_not_depend_on_what_the_flop_counter_saw(cell, packing):
    """The "CUDA path": whether FlopCounterMode counts the recurrent kernel (CPU GRU, packed LSTM: matmuls), sees
    nothing (CPU padded LSTM: oneDNN's mkldnn_rnn_layer; CUDA: _cudnn_rnn, no formula) or counts nonsense, the
    total is the hand count plus the rest of the model."""
    m = rnn(cell).eval()
    x = inputs(packing)
    with torch.no_grad(), FlopCounterMode(display=False) as plain:
        m(x)
    seen = plain.get_total_flops()
    assert seen in (0, HAND[cell, packing])  # 0: a padded LSTM where oneDNN is there (x86)
    nonsense = {op: (lambda *a, **k: 10**9) for op in (torch.ops.aten.mkldnn_rnn_layer, torch.ops.aten.addmm,
                                                         torch.ops.aten.mm)}
    assert counted(m, x, nonsense) == HAND[cell, packing]


class Classifier(nn.Module):
    """A 2-layer BiLSTM or BiGRU over one padded sequence, its last state into a linear head (2 x 2H x 4 FLOPs)."""

    def __init__(self, cell):
        super().__init__()
        self.rnn, self.head = rnn(cell), nn.Linear(2 * H, 4)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_flops_per_sample_adds_the_recurrent_count_to_the_rest_once(cell):
    xs = torch.randn(4, T, I)
    per_sample = HAND[cell, "padded"] // B
    assert flops_per_sample(Classifier(cell), xs) == per_sample + 2 * 2 * H * 4
    # the hooks are gone afterwards
    m = Classifier(cell)
    flops_per_sample(m, xs)
    assert not m.rnn._forward_hooks and not m.rnn._forward_pre_hooks


# --- bf16 autocast: recurrent layers in float32 ---

def bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("packing", ["padded", "packed"])
def test_a_wrapped_rnn_under_bf16_autocast_returns_float32_and_the_fp32_values(cell, packing):
    plain = rnn(cell)
    wrapped = fp32_recurrent(copy.deepcopy(plain))
    assert type(wrapped) is {"lstm": Float32LSTM, "gru": Float32GRU}[cell] and isinstance(wrapped, type(plain))
    x = inputs(packing)
    with bf16():
        out, h = wrapped(x)
    ref, ref_h = plain(x)
    if packing == "packed":
        assert torch.equal(out.batch_sizes, ref.batch_sizes)
        out, ref = out.data, ref.data
    assert out.dtype == torch.float32 and torch.allclose(out, ref, atol=1e-6)
    for a, b in zip(h if cell == "lstm" else [h], ref_h if cell == "lstm" else [ref_h]):
        assert a.dtype == torch.float32 and torch.allclose(a, b, atol=1e-6)
    # gradients flow into every weight, in float32
    (out.sum() + sum(t.sum() for t in (h if cell == "lstm" else [h]))).backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in wrapped.parameters())
    # without autocast it is the plain layer
    assert torch.equal(wrapped(inputs("padded"))[0], plain(inputs("padded"))[0])


def test_a_bf16_input_and_hidden_state_are_cast_and_the_rest_of_the_model_keeps_autocast():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(I, I), nn.LSTM(I, H, batch_first=True))
    fp32_recurrent(model)
    x = torch.randn(B, T, I)
    hx = (torch.zeros(1, B, H, dtype=torch.bfloat16), torch.zeros(1, B, H, dtype=torch.bfloat16))
    with bf16():
        assert model[0](x).dtype == torch.bfloat16  # the linear layer still autocasts
        out, _ = model[1](model[0](x), hx)
    assert out.dtype == torch.float32
    out.sum().backward()
    assert model[0].weight.grad is not None and model[1].weight_hh_l0.grad is not None


def test_wrapping_keeps_state_dict_keys_pickling_copying_and_is_idempotent():
    plain = Classifier("lstm")
    wrapped = fp32_recurrent(copy.deepcopy(plain))
    assert fp32_recurrent(wrapped) is wrapped and type(wrapped.rnn) is Float32LSTM
    assert list(wrapped.state_dict()) == list(plain.state_dict())
    wrapped.load_state_dict(plain.state_dict())  # a checkpoint of either loads into the other
    plain.load_state_dict(wrapped.state_dict())
    x = torch.randn(2, T, I)
    for clone in (pickle.loads(pickle.dumps(wrapped)), copy.deepcopy(wrapped)):
        assert type(clone.rnn) is Float32LSTM
        with bf16():
            assert clone(x).dtype == torch.bfloat16  # the head autocasts; the LSTM inside ran in fp32
        assert torch.equal(clone(x), plain(x))


def test_a_float32_lstm_under_cpu_bf16_autocast_runs_wrapped_whatever_the_cpus_bf16_support():
    """Unwrapped, CPU autocast hands a float32-fed LSTM to oneDNN's bf16 kernel, which fails on CPUs without bf16
    units ("could not create a primitive descriptor"); wrapped, it runs in fp32 on any CPU."""
    m = fp32_recurrent(nn.LSTM(I, H, batch_first=True))
    with bf16():
        assert m(torch.randn(B, T, I))[0].dtype == torch.float32


@pytest.mark.slow
def test_the_trainer_wraps_recurrent_layers_in_bf16_runs_only(tmp_path):
    from finebench.data import prepare_task
    from finebench.train import set_up
    from test_precision import SPEECH, spec

    prepare_task("speech", "speech_commands_synth", SPEECH, tmp_path / "speech")
    kinds = {}
    for precision in ("bf16", "fp32", "fp16"):
        s = spec("speech", "speech_commands_synth", "speech", "crnn", {"precision": precision}, stem=[8], hidden=16)
        kinds[precision] = type(set_up(s, tmp_path / "speech", "cpu").module.rnn)
    assert kinds == {"bf16": Float32LSTM, "fp32": nn.LSTM, "fp16": nn.LSTM}
