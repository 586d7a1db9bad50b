"""The DAG definitions (sagemaker_*.py: the package's own DAG folder) and what they share: the trigger
form and the retrain DAG factory. A deployment's dags/ holds one line per DAG importing it from here
(the repo's dags/ does), or its [core] dags_folder is this folder, whose .airflowignore leaves out the
shared modules."""
