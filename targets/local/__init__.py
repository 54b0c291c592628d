"""The ``local`` target: the serving runtime as a background process on this computer."""
