# custseg — two commands on a fresh machine:  make demo   and   make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_OUT ?= custseg-demo

.PHONY: demo test lint format bench clean browser spark postgres

# test-only data: CDNOW (Fader & Hardie's published BG/NBD example) ships inside the lifetimes
# 0.11.3 wheel; the value-model tests read it from the wheel, which is never installed
CDNOW := $(VENV)/test-data/.lifetimes-0.11.3
$(CDNOW): $(STAMP)
	$(BIN)/python -m pip download --quiet --no-deps --dest $(VENV)/test-data lifetimes==0.11.3
	@touch $(CDNOW)

# (re)install only when the project definition changed
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/custseg demo --out $(DEMO_OUT)

# the report is checked in a real headless browser: Debian's chromium, installed when missing
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the report tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# the Spark engine's tests run in local mode: PySpark (the custseg[spark] extra) and Debian's
# Java 17 runtime, each installed when missing
spark: $(STAMP)
	@$(BIN)/python -c "import pyspark" 2>/dev/null || { \
	  echo "installing PySpark (custseg[spark]) for the Spark engine tests"; \
	  $(BIN)/python -m pip install --quiet -e ".[test,spark]"; }
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing Debian's openjdk-17-jre-headless for the Spark engine tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }

# the PostgreSQL source is tested against a real server that the tests start in a temporary
# folder (tests/pg_server.py): Debian's postgresql package, installed when initdb/pg_ctl are
# missing (Debian keeps them in /usr/lib/postgresql/<major>/bin, off the PATH)
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql for the database-source tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

test: $(STAMP) $(CDNOW) browser spark postgres
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -q

# speed benchmarks, printed as ratios against references measured in the same run
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: $(STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache src/*.egg-info
