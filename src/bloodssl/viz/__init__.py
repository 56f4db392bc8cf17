"""Every figure of the notebooks."""
