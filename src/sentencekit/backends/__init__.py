"""Inference backends other than plain PyTorch.

* :mod:`sentencekit.backends.onnx_export`: export a model's transformer to ONNX (fp32, graph-optimized, or
  dynamically quantized to int8) and find or cache those files per model fingerprint.
* :mod:`sentencekit.backends.onnx`: :class:`~sentencekit.backends.onnx.OnnxTransformer`, a
  :class:`~sentencekit.modules.Transformer` whose encoder runs in ONNX Runtime. Tokenization, token-length
  batching and pooling stay those of the torch path.

Nothing here is imported by ``import sentencekit``; onnxruntime, onnx and onnxscript come with the ``onnx``
extra (``pip install "sentencekit[onnx]"``) and are imported on first use.
"""
