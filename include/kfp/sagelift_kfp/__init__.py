"""sagelift's pipeline on Kubeflow Pipelines: the components' glue over the core (sagelift.steps).

The compiled pipeline's components import this package, ``sagelift.steps`` and ``sagelift.domain`` in
their container (see include/kfp/README.md for how they get there), so both engines run the same step
workflows.
"""
