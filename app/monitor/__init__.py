"""Watching a deployed model: the proof's baseline summary (``baseline``) and how the
inputs the deployment now gets compare with it (``drift``). Qt-free, numpy only."""
