# Every target sets itself up: the first run creates .venv and installs the course into it.
#   make lab      open the course in JupyterLab   (extra options: make lab JUPYTER_ARGS="--no-browser --port=8899")
#   make test     lint + unit tests + every notebook under nbval, then every lesson once more
#                 on the second float path with another seed (what CI runs)
#   make execute  refresh the committed notebook outputs (the only way outputs are written)
#   make bench    time every notebook on this machine -> hvnotes/times.json (the measured times
#                 every document quotes; the notebooks themselves are not written)
#   make times    refresh the times quoted in README.md, docs/instructors.md and the notebooks'
#                 marked blocks from hvnotes/times.json (make bench / make robustness do it too)
#   make robustness  every notebook under seeds 0-4 x every float path -> docs/robustness.md
#                 (and its default-path times -> hvnotes/times.json)
#   make falsify  every notebook once per null twin of its methods -> docs/falsification.md
#   make student  write the learner copies (solutions removed) to notebooks/exercises/
#   make progress which exercises in notebooks/exercises/ are done (runs only their checkers;
#                 choose notebooks with: make progress PROGRESS_ARGS="--notebooks 02 03")
#   make book     build the static site offline into build/book/_build/html/

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU wheel of torch; on a machine with a GPU, `make TORCH=torch lab` keeps your own build.
TORCH ?= torch==2.13.0
JUPYTER_ARGS ?=
PROGRESS_ARGS ?=
NB ?= $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
STAMP := $(VENV)/.installed-stamp

# The kernel environment of tests and of the scripted runs (see README: reproducible outputs).
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export TQDM_DISABLE := 1
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

# nbval keeps each notebook on one worker; handing them out longest first (the measured times
# in hvnotes/times.json; a notebook not yet measured counts as the longest) lets the two workers
# finish together. scripts/times.py needs only the standard library, so this works before .venv.
TIMES := hvnotes/times.json
NB_TEST = $(or $(shell $(PYTHON) scripts/times.py --longest-first $(NB) 2>/dev/null),$(NB))
# The documents whose marked blocks (<!-- times:start ... -->) quote the measured times.
TIMES_DOCS = README.md docs/instructors.md $(NB)
# Each notebook is a lesson; the audits and replications that do not fit its slot sit beside it
# in NN_name_deep_dive.ipynb. make test's second float path runs the lessons only (the deep
# dives' other seeds and paths are make robustness's job).
LESSONS_TEST = $(filter-out %_deep_dive.ipynb,$(NB_TEST))

NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
         --nbval-cell-timeout=600 --nbval-kernel-startup-timeout=120

.PHONY: install lab test lint unit nbtest nbtest-other execute bench times robustness falsify \
        student progress book browser clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev,book]"
	touch $(STAMP)

# Containers and course servers often run as root, which JupyterLab refuses without this flag.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: install
	env -u TQDM_DISABLE -u MPLBACKEND $(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG) $(JUPYTER_ARGS)

# actionlint checks the CI workflows (.github/workflows/): syntax, expressions, job graph.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/actionlint

# Unit tests include the learner copies and the built site (pages, links, a Chromium screenshot).
# Two workers: the suite is CPU-bound and its tests share no files they write.
unit: install book browser
	$(BIN)/python -m pytest tests -q -n 2 --dist loadgroup

nbtest: install
	$(BIN)/python -m pytest $(NBVAL) -n 2 --dist loadscope -q $(NB_TEST)

# The claims must not depend on the float path or the seed: run every lesson once more with
# other float kernels and base seed 1. Only the asserts decide here (--nbval-lax); the numbers
# differ from the committed ones, as they may on any other machine. The other kernels are the
# AVX2 ones where torch's default is AVX-512, and those without vector instructions where the
# default already is AVX2 (there ATEN_CPU_CAPABILITY=avx2 would change nothing): the second
# path of the robustness matrix, which scripts/robustness.py chooses for both.
OTHER_CAPABILITY = $$($(BIN)/python scripts/robustness.py --second-cpu-capability)
OTHER_PATH = ATEN_CPU_CAPABILITY=$(OTHER_CAPABILITY) HVNOTES_SEED=1
nbtest-other: install
	@echo "second pass: ATEN_CPU_CAPABILITY=$(OTHER_CAPABILITY) HVNOTES_SEED=1"
	$(OTHER_PATH) $(BIN)/python -m pytest --nbval-lax --nbval-current-env \
	  --nbval-cell-timeout=600 --nbval-kernel-startup-timeout=120 -n 2 --dist loadscope -q \
	  $(LESSONS_TEST)

test: lint unit nbtest nbtest-other

execute: install
	$(BIN)/python scripts/run_notebooks.py --write $(NB)

# BENCH_ARGS="--repeat 3" times each notebook three times (median, min and max are recorded).
BENCH_ARGS ?=
bench: install
	$(BIN)/python scripts/run_notebooks.py --times $(TIMES) $(BENCH_ARGS) $(NB)
	$(BIN)/python scripts/times.py --write $(TIMES_DOCS)

times: install
	$(BIN)/python scripts/times.py --counts
	$(BIN)/python scripts/times.py --write $(TIMES_DOCS)

# 35 to 50 minutes on 2 cores: every notebook x 5 seeds x 2 float paths, two kernels at a time.
# CI splits the same matrix over machines: scripts/robustness.py --shard k/n, then --merge.
robustness: install
	$(BIN)/python scripts/robustness.py --times $(TIMES) $(NB)
	$(BIN)/python scripts/times.py --write $(TIMES_DOCS)

# Each notebook once per registered null twin (scripts/twins/): which asserts does each break?
falsify: install
	$(BIN)/python scripts/falsify.py $(NB)

student: install
	$(BIN)/python scripts/student.py

# The learner's table: each exercise done / not yet / failing, from its checker alone (seconds).
progress: install
	$(BIN)/python scripts/progress.py $(PROGRESS_ARGS)

book: install
	$(BIN)/python scripts/build_book.py

# Debian's chromium for the screenshot test: installed when we are root with apt (as in CI),
# otherwise that test is skipped.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found: the site screenshot test will be skipped"; fi; }

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build
