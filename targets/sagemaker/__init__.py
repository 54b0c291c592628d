"""The ``sagemaker``  target."""
