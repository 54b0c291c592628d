"""The HTTP inference runtime that runs inside every image and as the `local` target.

This package must run on its own: it imports only the standard library, numpy,
onnxruntime and its small HTTP stack, never the rest of ``app`` (enforced by
tests/unit/test_architecture.py). Its dependency list is
``app/serving/requirements.txt``, which also feeds the image's wheelhouse.
"""
