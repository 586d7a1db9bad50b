"""sagelift: train a SageMaker model and expose it as a secured endpoint in a scientist's own account."""
