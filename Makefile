# Quick start: `make demo` (install + compress the built-in example for android), `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.edgekd-installed
# Debian packages: real data (Fashion-MNIST; English text: fortunes, WordNet glosses, the Python docs), sshd for the SSH transport tests, qemu for ARM emulation, chromium to render report.html in the tests.
APT_PACKAGES := dataset-fashion-mnist fortunes wordnet-base python3-doc openssh-server openssh-client qemu-user debootstrap gcc xz-utils chromium

.PHONY: install demo test test-fast test-compat arm-env clean system-deps

install: $(STAMP)

system-deps:
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages: $$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "warning: apt-get failed; the demo falls back to scikit-learn's digits"; \
	  fi; \
	else echo "apt not available (or not root): skipping Debian packages; the demo uses scikit-learn's digits"; fi

$(STAMP): pyproject.toml constraints.txt
	@$(MAKE) --no-print-directory system-deps
	@[ -x $(BIN)/python ] || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[all]'
	@touch $(STAMP)
	@echo "installed: $(BIN)/edgekd"

demo: install
	$(BIN)/edgekd compress --target android --output runs/demo

test: install
	@$(MAKE) --no-print-directory arm-env || echo "warning: ARM emulation setup failed; emulation tests will skip"
	@# pytest exits 5 when nothing was collected; that is not a failure.
	$(BIN)/python -m pytest tests; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

test-fast: install
	$(BIN)/python -m pytest tests -m "not slow"

arm-env: install
	@if [ -f scripts/arm_env.sh ]; then bash scripts/arm_env.sh; else echo "no ARM setup script yet"; fi

# Not part of `make test`: builds the wheel, installs it in a fresh venv beside the lower bounds (torch 2.13.0)
# and runs the fast tests against it; writes benchmarks/results/compat.json. COMBOS=lower,pinned for both.
COMBOS ?= lower
test-compat: install
	$(BIN)/python benchmarks/compat.py --combos $(COMBOS)

clean:
	rm -rf runs .pytest_cache build dist *.egg-info
