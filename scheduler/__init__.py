"""The scheduler daemon: the control plane."""
