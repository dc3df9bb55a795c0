import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def write_wordnet(root: Path, per_class: dict[tuple[str, int], list[str]]) -> Path:
    """A tiny WordNet dict folder in the official data.* format (licence header lines start with two spaces)."""
    root.mkdir(parents=True, exist_ok=True)
    files = {"n": [], "v": []}
    offset = 1000
    for (pos, lexnum), glosses in per_class.items():
        for i, gloss in enumerate(glosses):
            offset += 100
            word = f"w{lexnum}_{i}"
            files[pos].append(
                f"{offset:08d} {lexnum:02d} {pos} 01 {word} 0 001 @ 00001740 {pos} 0000 | {gloss}; "
                f"\"an example of {word}\"  "
            )
    for pos, name in (("n", "data.noun"), ("v", "data.verb")):
        header = ["  1 This software and database is being provided to you, the LICENSEE, by  ",
                  "  2 Princeton University under the following license.  "]
        (root / name).write_text("\n".join(header + files[pos]) + "\n")
    return root


@pytest.fixture
def tiny_wordnet(tmp_path) -> Path:
    def tag(c, i):  # a made-up word unique to one synset, used twice so a tokenizer would keep it if it saw it
        name = "zq" + "".join("abcdefghij"[int(d)] for d in f"{c}{i:02d}")
        return f"{name} {name}"

    classes = {
        ("n", 5): [f"a small furry animal {tag(1, i)} that lives in the forest" for i in range(30)],   # noun.animal
        ("n", 20): [f"a green flowering plant {tag(2, i)} with broad leaves" for i in range(30)],      # noun.plant
        ("v", 38): [f"move quickly {tag(3, i)} from one place to another" for i in range(30)],         # verb.motion
    }
    return write_wordnet(tmp_path / "wordnet", classes)


@pytest.fixture
def experiment_file(tmp_path) -> Path:
    from finebench.tracking import init_experiment

    out = tmp_path / "mlflow" / "experiment.json"
    init_experiment(f"sqlite:///{tmp_path}/mlflow.db", "tests", tmp_path / "artifacts", out)
    return out


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())


def copy_config(repo: Path, name: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(repo / "config" / name, dest / name)
    return dest / name
