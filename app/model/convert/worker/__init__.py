"""Conversion worker: loads the model, converts it to ONNX, runs the original on sample rows.

Runs as a separate process, started by ``app.model.convert`` with the interpreter the user
chose (``--python``), because a pickle loads reliably only with the library versions it
was saved with. It therefore imports nothing from ``app`` (only its own modules, the
facts it shares with intake in :mod:`app.model.modelfacts` and :mod:`app.model.convert.isolation`,
all by relative imports) and needs only the model's own library and its converter
(skl2onnx, onnxmltools or torch) in that environment; it is run as a plain file path
(``python worker/__main__.py JOB_DIR``), also from a frozen app.

Modules, in the order a job uses them: ``main`` (the entry: job, isolation, result),
``common`` (error, progress, library checks), ``loading`` (the guarded unpickler and
the formats' loaders), ``describing`` (columns, task, value ranges), ``rows`` (sample
rows), ``converting`` (to ONNX), ``tabular`` and ``tensor`` (a job end to end).

Protocol (files in JOB_DIR): reads ``job.json``; writes ``model.onnx`` (path given in
the job), ``rows.json`` (tabular sample rows), ``original.npz`` (what the original model
predicted, and tensor inputs) and ``result.json`` (``{"ok": true, ...}`` or ``{"ok":
false, "error": KIND, "message": ..., "hint": ..., "details": ...}``). Progress goes to
stdout as lines ``MODELSHIP-PROGRESS {"fraction": f, "message": m}``.
"""
