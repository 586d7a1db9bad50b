"""What the DAG files are made of besides operators: the trigger form and the retrain DAG factory."""
