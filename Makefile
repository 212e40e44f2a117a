# The two commands a new user needs: `make serve` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
NODE   := var
STAMP  := $(VENV)/.installed

.PHONY: serve test install lint clean fuzz bench chromium soak vendor messages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,fast]'
	touch $(STAMP)

# Browser assets (Swagger UI, htmx, ECharts; axe-core for the tests) from the npm registry,
# pinned in vendor.lock: the node serves them itself, never from a CDN (issue 18).
VENDORED := src/idnode/static/vendor/.fetched
$(VENDORED): vendor.lock scripts/vendor.sh
	bash scripts/vendor.sh
	touch $(VENDORED)
vendor: $(VENDORED)

install: $(STAMP) $(VENDORED)

$(NODE)/idnode.toml: | $(STAMP)
	$(BIN)/idnode init $(NODE) --name demo-node --prefix 20.500.123 --demo

serve: $(STAMP) $(VENDORED) $(NODE)/idnode.toml
	$(BIN)/idnode serve $(NODE)

test: $(STAMP) $(VENDORED) chromium
	$(BIN)/python -m pytest

# The proxy's HTML page is checked in headless Chromium (tests/transport_http/test_proxy_browser.py,
# Playwright driving Debian's browser): installed here when missing and apt-get is at hand;
# without it that test skips and says why. A CJK font, so the console's Chinese pages render.
CHROMIUM := /usr/bin/chromium
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
chromium:
	@if { [ ! -x $(CHROMIUM) ] || [ ! -e $(CJK_FONT) ]; } && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei) \
		|| echo "chromium or its CJK font could not be installed: the browser test will skip"; \
	fi

# Reproduces the figures in docs/performance.md (a throw-away node in var-bench/): the kernel's
# own UDP ceiling, cached resolution (hits only, after a warm-up) on each transport, HTTP with
# pipelining, the default mix (hits, unique misses, typed queries) and latency at a fixed rate.
# First (issue 16): the store path with the cache off over BENCH_STORE_COUNT identifiers, and
# cached resolution, as ratios to the Python floor measured in the same run (var-bench-store/
# is seeded once, about two minutes for a million identifiers, and reused); authenticated
# creates over sessions (binary and REST) with the statistics checked; a bulk import of
# BENCH_IMPORT_ROWS template-checked records with the node serving and its resolution p99.
# With BENCH_PG set to a PostgreSQL DSN (no schema: e.g. postgresql://postgres@127.0.0.1/test)
# the store path and the import run on PostgreSQL too (schemas bench_store, bench_import).
BENCH_STORE_COUNT ?= 1000000
BENCH_IMPORT_ROWS ?= 1000000
BENCH_PG ?=
BENCH_RUN = $(BIN)/idnode bench run --seed-node var-bench --count 10000 --duration 10 --warmup 5
bench: $(STAMP)
	$(BIN)/python bench/store_path.py --count $(BENCH_STORE_COUNT) --seconds 5 --node var-bench-store
	$(BIN)/python bench/writes.py --workers 1 --seconds 5 --paths binary,wrk
	$(BIN)/python bench/import_bulk.py --rows $(BENCH_IMPORT_ROWS) --serve
	@if [ -n "$(BENCH_PG)" ]; then set -ex; \
		$(BIN)/python bench/store_path.py --count $(BENCH_STORE_COUNT) --seconds 5 \
			--node var-bench-store-pg --store '$(BENCH_PG)?schema=bench_store'; \
		$(BIN)/python bench/import_bulk.py --rows $(BENCH_IMPORT_ROWS) --serve \
			--store '$(BENCH_PG)?schema=bench_import'; \
	fi
	$(BIN)/python bench/udp_floor.py --seconds 5
	$(BENCH_RUN) --protocol udp,tcp,http --mix hit=100 \
		--json-out bench/results/cached.json --html-out bench/results/cached.html
	$(BENCH_RUN) --protocol http --mix hit=100 --pipeline 8 \
		--json-out bench/results/http-pipelined.json
	$(BENCH_RUN) --protocol udp,tcp,http \
		--json-out bench/results/mix.json --html-out bench/results/mix.html
	$(BENCH_RUN) --protocol udp --mix hit=100 --mode rate --rate 10000 --processes 1 \
		--json-out bench/results/udp-rate.json

# Long fuzz run (issue 7): Atheris (coverage-guided) over every decoder, FUZZ_RUNS inputs;
# crashes land in tests/fuzz/crashes/ and become regressions of `make test`.
FUZZ_RUNS ?= 1000000
FUZZ_SEED ?= 1
fuzz: $(STAMP)
	$(BIN)/pip install --quiet -e '.[fuzz]' || echo "atheris unavailable: Python mutation loop"
	$(BIN)/python -m tests.fuzz.driver --atheris --runs $(FUZZ_RUNS) --seed $(FUZZ_SEED)

# Issue 15: valid traffic beside every attack against one node, bounded (SOAK_SECONDS, at
# most 600). Prints RSS, fds and the valid client's answers; fails when it loses more than
# 1 % of them or RSS grows more than 200 MiB. Figures: docs/security.md. Not part of `test`.
SOAK_SECONDS ?= 180
soak: $(STAMP)
	$(BIN)/python bench/soak.py --seconds $(SOAK_SECONDS)

# The console's strings (issue 18): extract them into console.pot and merge them into the
# Chinese catalogue, whose new entries a translator then fills (the .po is compiled at start).
CONSOLE := src/idnode/console
messages: $(STAMP)
	$(BIN)/pybabel extract -F $(CONSOLE)/babel.cfg -k _ -k gettext -k N_ -k ngettext:1,2 \
		--no-location --omit-header -o $(CONSOLE)/locale/console.pot .
	$(BIN)/pybabel update -D console -i $(CONSOLE)/locale/console.pot -d $(CONSOLE)/locale \
		-l zh_CN --no-fuzzy-matching --omit-header

lint: $(STAMP)
	$(BIN)/ruff check src tests

clean:
	rm -rf $(VENV) $(NODE) build *.egg-info src/*.egg-info
