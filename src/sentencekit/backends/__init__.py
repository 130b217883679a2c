"""Inference backends other than plain PyTorch.

* :mod:`sentencekit.backends.onnx_convert`: write a transformer as an ONNX graph (fp32 export, ahead-of-time
  optimization, dynamic int8 quantization).
* :mod:`sentencekit.backends.onnx_export`: name those files as the reference does, find or produce them per
  model fingerprint, and the reference's ``export_*_onnx_model`` functions.
* :mod:`sentencekit.backends.onnx`: :class:`~sentencekit.backends.onnx.OnnxTransformer`, a
  :class:`~sentencekit.modules.Transformer` whose encoder runs in ONNX Runtime. Tokenization, token-length
  batching and pooling stay those of the torch path.

Nothing here is imported by ``import sentencekit``; onnxruntime, onnx and onnxscript come with the ``onnx``
extra (``pip install "sentencekit[onnx]"``) and are imported on first use.
"""
