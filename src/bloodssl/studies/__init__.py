"""What each notebook runs: its plan per profile, the run harness and its result tables."""
