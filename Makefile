# make demo  - set up .venv and run the workflow on a bundled example tree built from real DICOMs
# make test  - set up .venv (with the test tools of requirements-test.txt) and run the lint and the tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: venv venv-test venv-slurm demo test test-slurm bench lint clean

venv: $(VENV)/.installed

# The tools that judge the output (dcm2niix, dciodvfy, nibabel) and the linters, on top of the pins.
venv-test: $(VENV)/.installed-test

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

# The same plus the Slurm executor plugin, for cluster runs (see requirements-slurm.txt for why apart).
venv-slurm: .venv-slurm/.installed

.venv-slurm/.installed: requirements.txt requirements-slurm.txt
	$(PYTHON) -m venv .venv-slurm
	.venv-slurm/bin/python -m pip install --quiet --upgrade pip
	.venv-slurm/bin/python -m pip install --quiet -r requirements-slurm.txt
	touch $@

demo: venv
	rm -rf demo
	$(BIN)/python scripts/make_example_tree.py demo/input
	$(BIN)/snakemake --cores $(CORES) --config input_dir=demo/input output_dir=demo/output \
		work_dir=demo/work log_dir=demo/logs key_file=demo/keys/deid.key
	@echo
	@echo "De-identified sessions: demo/output/<SUBJECT>/imaging/<SUBJECT>_<SES>/"
	@echo "Reports:                demo/output/reports/report.html (open in a browser), summary.tsv,"
	@echo "                        and one JSON per session"
	@cat demo/output/reports/summary.tsv

# ruff (Python), snakefmt (rules), and Snakemake's own lint, which needs an input folder to parse the
# workflow (an empty one has no sessions, which is fine).
lint: venv-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules
	mkdir -p .lint/input
	$(BIN)/snakemake --lint --config input_dir=.lint/input output_dir=.lint/output work_dir=.lint/work \
		log_dir=.lint/logs key_file=.lint/keys/deid.key

test: venv-test lint
	$(BIN)/python -m pytest

# make bench - throughput, memory and planning at scale against dicognito and pydicom, measured in one run
#              (5-10 min; BENCH_ARGS=--quick for a ~2 min smoke run). Table: bench/results/latest.md
bench: venv
	$(BIN)/python -m bench $(BENCH_ARGS)

# make test-slurm - the workflow on a single-node Slurm on this machine: starts it unless one answers
#                   (needs root: apt-get, /etc/slurm), runs the example tree through --profile profiles/slurm
#                   with the local run's checks, stops only what it started. ~3.5 min.
test-slurm: venv-slurm
	DEID_SLURM_PYTHON=.venv-slurm/bin/python tests/slurm/run.sh

clean:
	rm -rf demo .lint .snakemake .pytest_cache .venv-slurm
