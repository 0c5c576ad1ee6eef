"""The six steps of the pipeline, one module each (named as its function under lambdas/), and what they
share: context, verify, settle, report."""
