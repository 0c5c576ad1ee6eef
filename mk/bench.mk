# The benchmark (issue 5): not part of `make test`. `make bench BENCH_ARGS="--scale 0.1"` for a quick run.
# Writes bench/results.json, bench/chart.png and the generated section of BENCHMARKS.md.

BENCH_STAMP := $(VENV)/.bench-installed
BENCH_ARGS ?=
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)

.PHONY: bench rclone

$(BENCH_STAMP): bench/requirements.txt $(STAMP)
	$(PIP) install -q -r bench/requirements.txt
	touch $@

rclone: ## Install rclone (the Debian package) if it is missing
	@command -v rclone >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq rclone; }

bench: deps tf-config layers function-zips rclone $(BENCH_STAMP) ## Benchmark vs rclone and the emulators' ceiling (BENCH_ARGS="--scale 0.1")
	env -u AWS_CA_BUNDLE $(PY) -m bench.run $(BENCH_ARGS)
