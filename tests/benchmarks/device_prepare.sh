#!/usr/bin/env bash
# Prepare, on a machine with the package registries and `make setup` done, what the GPU check needs on an OFFLINE GPU
# machine that has Python 3.12 with torch/timm/pandas/... but not finebench's other dependencies (this workplace's
# `device` machine):
#   .whl/       wheels for CPython 3.12 x86-64 of mlflow, jsonschema, jiwer (speech recognition's WER) and their
#               dependencies that the GPU machine's image lacks (the image's package list: DEVICE_HAS below, from
#               /work/.library/device/KINDS.md, 2026-11-17)
#   .gpu-data/  the smoke suite's tasks, prepared here (typefaces needs Debian fonts, wordnet WordNet, speech espeak-ng)
# Both are git-ignored; carry them: run(command="bash tests/benchmarks/gpu_check.sh $OUT", carry=[".whl", ".gpu-data"]).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
[ -x "$PY" ] || make setup >/dev/null
DEVICE_HAS="absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build
certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio interface-meta jax jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities
linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath
msgpack multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro
nvidia-ml-py onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix
orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf
psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest python-dateutil
pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy
seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels sympy
tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch
torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer
typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp"

echo ">> wheels for the GPU machine (CPython 3.12, x86-64) into .whl/"
tmp=$(mktemp -d)
"$PY" -m pip download -q --disable-pip-version-check --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
    -c requirements.txt -d "$tmp" "$(grep '^mlflow==' requirements.txt)" "$(grep '^jsonschema==' requirements.txt)" \
    "$(grep '^jiwer==' requirements.txt)" \
    2> >(grep -v "^WARNING: Location" >&2)
rm -rf .whl && mkdir .whl
has=$(tr -s ' \n' '\n\n' <<<"$DEVICE_HAS")
for w in "$tmp"/*.whl; do
  name=$(basename "$w" | cut -d- -f1 | tr '_.' '--' | tr '[:upper:]' '[:lower:]')  # the normalised project name
  grep -qx -- "$name" <<<"$has" || mv "$w" .whl/
done
rm -rf "$tmp"
echo "   $(ls .whl | wc -l) wheels, $(du -sh .whl | cut -f1): $(ls .whl | cut -d- -f1 | tr '\n' ' ')"

echo ">> the smoke suite's data into .gpu-data/"
"$PY" tests/benchmarks/smoke_jobs.py --prepare-only --data .gpu-data
du -sh .gpu-data
echo ">> ready: run(command=\"bash tests/benchmarks/gpu_check.sh \$OUT\", carry=[\".whl\", \".gpu-data\"], timeout_s=600)"
