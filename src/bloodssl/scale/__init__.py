"""Beyond one process, on Ray (the ``scale`` extra): labelling on Ray Data with an actor pool
of model replicas (``labelling``), the run harness's sweeps as Ray tasks (``sweep``), on a
local Ray started for the job or an existing cluster given its address (``cluster``).
Nothing else in the package needs Ray."""
