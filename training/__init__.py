"""Fine-tuning and evaluation of ovmlv models (run from the repository: ``python -m training``)."""
