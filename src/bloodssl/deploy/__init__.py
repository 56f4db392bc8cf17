"""Labelling images in bulk with a trained network: a model ``bundle`` saved with its
calibration, image ``sources`` read a range at a time, torch and OpenVINO (int8) ``backends``,
the batch ``predictor`` that writes Parquet shards with resume and an errors file, and
``bench``, the throughput of every registered model per backend (``make bench``).
``python -m bloodssl.deploy`` is the command line (``cli``)."""
