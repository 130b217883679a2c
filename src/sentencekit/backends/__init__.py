"""Inference paths other than plain PyTorch, and the choice between them.

* :mod:`sentencekit.backends.select`: which path a model runs (``backend=None``: the fastest exact one;
  ``"torch"``, ``"onnx"``, ``"auto"``), with the reason logged and the result in ``model.inference_path``.
* :mod:`sentencekit.backends.probe`: ``backend="auto"``'s check that a fast path stays close to fp32.
* :mod:`sentencekit.backends.cpu`: physical cores and the instruction sets (bf16, int8 dot products).
* :mod:`sentencekit.backends.onnx_convert`: write a model as an ONNX graph (TorchScript export, ONNX Runtime's
  transformer fusions, ahead-of-time optimization), each checked against torch.
* :mod:`sentencekit.backends.onnx_quantize`: int8 weights with per-token activation scales.
* :mod:`sentencekit.backends.onnx_export`: name those files as the reference does, find or produce them per
  model fingerprint, and the reference's ``export_*_onnx_model`` functions.
* :mod:`sentencekit.backends.onnx`: :class:`~sentencekit.backends.onnx.OnnxTransformer`, a
  :class:`~sentencekit.modules.Transformer` whose encoder runs in ONNX Runtime (tokenization, token-length
  batching and pooling stay those of the torch path); :mod:`sentencekit.backends.onnx_scorer` does the same
  for CrossEncoder.

Nothing here is imported by ``import sentencekit``; onnxruntime, onnx and onnxscript come with the ``onnx``
extra (``pip install "sentencekit[onnx]"``) and are imported on first use.
"""
