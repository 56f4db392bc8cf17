"""Shared machinery: file I/O, checkpoints, schedules, input validation, prediction and metrics."""
