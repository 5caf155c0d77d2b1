"""The shared engine: devices, data loading, training loops, checkpoints, progress."""
