"""The learning methods, each a scikit-learn estimator (or transformer) in a module of its own."""
