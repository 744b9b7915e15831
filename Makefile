# mmload — see README.md. `make demo` and `make test` work on a fresh machine: they set up what
# they need (a .venv, Debian packages used by the tests, checkov's own tool environment).

PY       ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
TOOLS    := .tools
CHECKOV  := $(TOOLS)/checkov/bin/checkov
PARLIAMENT := $(TOOLS)/parliament/bin/parliament
CLIENTJS := tests/sim/client
APT_PKGS := nginx prometheus chromium wrk openssh-server rsync postgresql postgresql-client
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install sysdeps tools nodedeps demo test lint bench clean

install: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Debian packages the tests use as real validators and peers: nginx -t, promtool, headless
# Chromium, wrk; OpenSSH servers standing in for a deployment's hosts, rsync to copy runs back,
# PostgreSQL standing in for its database. Installed only when missing.
sysdeps:
	@missing=""; \
	command -v nginx >/dev/null || missing="$$missing nginx"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	test -x /usr/sbin/sshd || missing="$$missing openssh-server"; \
	command -v rsync >/dev/null || missing="$$missing rsync"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v psql >/dev/null || missing="$$missing postgresql-client"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@command -v terraform >/dev/null || { echo "terraform CLI not found on PATH (the image ships 1.11.x)"; exit 1; }

# checkov pins an old `packaging` that clashes with recent pytest: it gets its own environment.
# parliament (the IAM policy auditor, tests/iam) imports pkg_resources, gone from setuptools 81,
# while hdrhistogram needs setuptools >= 83: it gets its own environment too. Both run offline.
tools: $(CHECKOV) $(PARLIAMENT)

$(CHECKOV):
	$(PY) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install -q --upgrade pip
	$(TOOLS)/checkov/bin/pip install -q 'checkov>=3.2'

$(PARLIAMENT):
	$(PY) -m venv $(TOOLS)/parliament
	$(TOOLS)/parliament/bin/pip install -q --upgrade pip
	$(TOOLS)/parliament/bin/pip install -q 'parliament==1.6.4' 'setuptools<81'

# Mattermost's own JavaScript client (@mattermost/client), used by the simulator fidelity tests.
nodedeps:
	@if [ -f $(CLIENTJS)/package.json ]; then cd $(CLIENTJS) && npm ci --silent --no-audit --no-fund; fi

demo: install
	$(BIN)/mmload demo

test: install sysdeps tools nodedeps
	$(BIN)/python tests/parallel.py -j 3

lint: install
	$(BIN)/ruff check mmload tests bench
	$(BIN)/ruff format --check mmload tests bench

bench: install sysdeps
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(TOOLS) build *.egg-info .pytest_cache
