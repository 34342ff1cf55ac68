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

.PHONY: install install-browser test test-slow test-all train bench lint clean slurm-up slurm-down

install: $(STAMP)

# torch==2.13.0 first: it is the CPU wheel on this kind of machine; a bare `torch` would pull a CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: install
	$(PY) -m pytest -q -m "not slow and not gpu" -p no:cacheprovider

test-slow: install install-browser
	$(PY) -m pytest -q -m "slow and not gpu" -p no:cacheprovider

# The web demo's browser test drives Debian's Chromium through chromedriver (tests/test_demo.py).
install-browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }

test-all: install install-browser
	$(PY) -m pytest -q -p no:cacheprovider

train: install
	$(PY) -m grit_exp.train $(ARGS)

# benchmarks/README.md explains each figure; the summary goes to benchmarks/results/latest.json (~10 min on 2 cores).
# TRL (the GRPO baseline) is a dev dependency; bench_gpu.py runs only where CUDA is.
bench: install
	$(PY) benchmarks/bench_judge.py
	$(PY) benchmarks/bench_grpo_vs_trl.py
	$(PY) benchmarks/bench_rollout.py
	$(PY) benchmarks/bench_judge_overlap.py
	$(PY) benchmarks/bench_judge_overlap.py --concurrency 4 --out judge_overlap_c4.json
	$(PY) benchmarks/bench_rewards.py
	$(PY) benchmarks/bench_memory.py
	$(PY) benchmarks/bench_gpu.py
	$(PY) benchmarks/bench_report.py

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
	rm -rf $(VENV) outputs multirun .pytest_cache
