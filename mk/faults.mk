# The fault and bad-input suite (issue 6): the pipeline through the local runtime with a fault proxy between
# the functions and the emulators; writes build/reliability.md (`make reliability-report` copies it into
# docs/). It starts its own moto, Azurite and runtime.

.PHONY: test-faults reliability-report

test-faults: deps tf-config layers function-zips ## Faults and bad input: nothing lost or corrupt, every failure visible; writes build/reliability.md
	$(PY) -m pytest tests/faults -q

reliability-report: test-faults ## Run the fault suite and copy its table into docs/reliability.md
	cp build/reliability.md docs/reliability.md
	@echo "docs/reliability.md updated from this run"
