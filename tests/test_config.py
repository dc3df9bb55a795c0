import copy

import pytest
import yaml

from finebench import config
from finebench.errors import ConfigError


@pytest.fixture
def smoke(repo):
    return yaml.safe_load((repo / "config" / "smoke.yaml").read_text())


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml"])
def test_shipped_configs_are_valid(repo, name):
    cfg = config.load(repo / "config" / name)
    runs = config.runs(cfg)
    modalities = {config.task_modality_of(cfg, t) for t, _, _ in runs}
    assert modalities == {"vision", "text", "speech"}
    families = {(config.task_modality_of(cfg, t), cfg["models"][m]["family"]) for t, m, _ in runs}
    for modality in ("vision", "text", "speech"):
        assert {f for mo, f in families if mo == modality} == {"cnn", "rnn", "transformer"}


def test_default_suite_is_three_seeds(repo):
    cfg = config.load(repo / "config" / "config.yaml")
    assert cfg["seeds"] == [0, 1, 2]
    assert len(config.runs(cfg)) == 5 * 3 * 3  # 3 classification tasks + super-resolution + asr, 3 models each
    asr = [(t, m) for t, m, s in config.runs(cfg) if config.task_type_of(cfg, t) == "asr" and s == 0]
    assert sorted(cfg["models"][m]["family"] for _, m in asr) == ["cnn", "rnn", "transformer"]
    sr = [(t, m) for t, m, s in config.runs(cfg) if config.task_type_of(cfg, t) == "superres" and s == 0]
    assert sorted(cfg["models"][m]["family"] for _, m in sr) == ["cnn", "rnn", "transformer"]


def test_misspelled_timm_arch_names_key_and_suggests(smoke):
    smoke["models"]["vit"]["arch"] = "timm:vit_tiny_patch16_22"
    with pytest.raises(ConfigError,
                       match=r"^models\.vit\.arch: unknown timm architecture 'vit_tiny_patch16_22'"
                             r".*vit_tiny_patch16_224"):
        config.check(smoke)


def test_misspelled_builtin_arch_lists_valid_names(smoke):
    smoke["models"]["crnn"]["arch"] = "crn"
    with pytest.raises(ConfigError) as err:
        config.check(smoke)
    msg = str(err.value)
    assert msg.startswith("models.crnn.arch:") and "did you mean 'crnn'" in msg and "small_cnn" in msg


def test_renamed_arch_names_its_new_name(smoke):
    assert smoke["models"]["speech_gru"]["arch"] == "column_rnn"
    smoke["models"]["speech_gru"]["arch"] = "row_lstm"
    with pytest.raises(ConfigError,
                       match=r"^models\.speech_gru\.arch: architecture 'row_lstm' is now called 'column_rnn'"):
        config.check(smoke)


def test_arch_of_wrong_modality_is_rejected(smoke):
    smoke["models"]["crnn"]["arch"] = "textcnn"
    with pytest.raises(ConfigError, match=r"models\.crnn\.arch: .*'textcnn' is for text"):
        config.check(smoke)


def test_unknown_dataset_and_option(smoke):
    bad = copy.deepcopy(smoke)
    bad["tasks"]["typefaces"]["dataset"] = "typeface"
    with pytest.raises(ConfigError,
                       match=r"tasks\.typefaces\.dataset: unknown dataset 'typeface'.*did you mean 'typefaces'"):
        config.check(bad)
    bad = copy.deepcopy(smoke)
    bad["tasks"]["typefaces"]["fmilies"] = ["NimbusSans"]
    with pytest.raises(ConfigError, match=r"tasks\.typefaces\.fmilies: unknown option.*'families'"):
        config.check(bad)


def test_model_tasks_must_exist_and_match_modality(smoke):
    smoke["models"]["crnn"]["tasks"] = ["wordnet"]
    with pytest.raises(ConfigError, match=r"models\.crnn\.tasks: task 'wordnet' is text"):
        config.check(smoke)
    smoke["models"]["crnn"]["tasks"] = ["typefacez"]
    with pytest.raises(ConfigError, match=r"models\.crnn\.tasks: unknown task 'typefacez'"):
        config.check(smoke)


def test_schema_errors_name_the_key(tmp_path, smoke):
    smoke["training"]["lr"] = -1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(smoke))
    with pytest.raises(ConfigError, match=r"training\.lr: -1 is less than or equal to the minimum of 0"):
        config.load(path)


def test_timm_model_needs_family(smoke):
    del smoke["models"]["vit"]["family"]
    with pytest.raises(ConfigError, match=r"models\.vit\.family: required"):
        config.check(smoke)


def test_resolve_spec_precedence_and_hash(smoke):
    smoke["tasks"]["typefaces"]["training"] = {"epochs": 5, "lr": 0.5}
    smoke["models"]["crnn"]["training"] = {"lr": 0.25}
    cfg = config.with_defaults(smoke)
    spec = config.resolve_spec(cfg, "typefaces", "crnn", 1)
    assert spec["training"]["epochs"] == 5          # task override
    assert spec["training"]["lr"] == 0.25           # model override wins
    assert spec["training"]["batch_size"] == 32     # config default
    assert spec["training"]["optimizer"] == "adamw"  # built-in default
    assert spec["model_kwargs"] == {"stem": [8], "hidden": 16}
    assert spec["family"] == "rnn" and spec["seed"] == 1
    other = config.resolve_spec(cfg, "typefaces", "small_cnn", 1)
    assert config.spec_hash(spec) != config.spec_hash(other)
    assert config.spec_hash(spec) == config.spec_hash(config.resolve_spec(cfg, "typefaces", "crnn", 1))


def test_models_run_only_on_their_modality(smoke):
    cfg = config.with_defaults(smoke)
    assert config.task_models(cfg, "typefaces") == ["small_cnn", "crnn", "vit"]
    assert config.task_models(cfg, "wordnet") == ["textcnn", "bilstm", "transformer"]


def test_typo_in_a_model_option_is_caught_before_any_job(smoke):
    smoke["models"]["crnn"]["hiddne"] = 96
    with pytest.raises(ConfigError, match=r"^models\.crnn\.hiddne: not an option of architecture 'crnn'.*'hidden'"):
        config.check(smoke)
    del smoke["models"]["crnn"]["hiddne"]
    smoke["models"]["vit"]["famly"] = "transformer"
    with pytest.raises(ConfigError, match=r"^models\.vit\.famly: not an option of timm:vit_tiny_patch16_224.*'family'"):
        config.check(smoke)


def test_config_check_is_cached_by_config_and_code(tmp_path, smoke):
    assert config.check_cached(smoke, tmp_path) is True   # checked
    assert config.check_cached(smoke, tmp_path) is False  # same config, same code: skipped
    smoke["models"]["crnn"]["hidden"] = 17
    assert config.check_cached(smoke, tmp_path) is True   # changed: checked again
    smoke["models"]["crnn"]["hiddne"] = 1
    with pytest.raises(ConfigError):
        config.check_cached(smoke, tmp_path)
    with pytest.raises(ConfigError):  # a failed check leaves no marker behind
        config.check_cached(smoke, tmp_path)
