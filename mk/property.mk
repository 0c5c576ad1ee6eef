# The generated-blob property test (issue 12, tests/integration/test_generated_blobs.py): `make test` runs it
# with a small fixed budget of examples (the same ones on every machine); `make test-deep` runs many more,
# new ones each time, and shrinks a failure to a minimal container (replayed first on the next run).
# AZS3COPY_HYPOTHESIS_EXAMPLES sets the number of examples of either profile.

.PHONY: test-deep

test-deep: deps ## The generated-blob property test with many examples (AZS3COPY_HYPOTHESIS_EXAMPLES=150)
	AZS3COPY_HYPOTHESIS_PROFILE=deep $(PY) -m pytest tests/integration/test_generated_blobs.py -q -p no:cacheprovider
