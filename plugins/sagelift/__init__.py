"""sagelift: train a SageMaker model and expose it as a secured endpoint in a scientist's own account."""

# The one place the version is written: the build reads it from here (pyproject's dynamic version).
__version__ = "0.1.0"
