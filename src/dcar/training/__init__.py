"""Training: run config, data loading, the shared loop, run directories."""
