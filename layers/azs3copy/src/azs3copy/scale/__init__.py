"""The scale model behind `azs3copy plan` and `python -m bench.scale`: a run's work (workload.py), what the
model is given besides it (inputs.py: the measured step costs, the deployment, the documented limits), how
long the run takes and what it uses (model.py), and what that costs (prices.py)."""
