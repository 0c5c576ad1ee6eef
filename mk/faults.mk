# The fault and bad-input suite (issue 6): the pipeline through the local runtime with a fault proxy between
# the functions and the emulators; writes docs/reliability.md. It starts its own moto, Azurite and runtime.

.PHONY: test-faults

test-faults: deps tf-config layers function-zips ## Faults and bad input: nothing lost or corrupt, every failure visible; writes docs/reliability.md
	$(PY) -m pytest tests/faults -q
