"""Shared machinery: file I/O, checkpoints, schedules, input validation, prediction, metrics,
calibration and the cost of a network."""
