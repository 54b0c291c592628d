"""The model stage: intake (reading model files safely) and conversion to ONNX.

``convert/`` and ``modelfacts.py`` stay siblings here: the conversion worker, run by
another Python where ``app`` is not importable, maps this folder as its private
package and imports ``modelfacts`` relatively.
"""
