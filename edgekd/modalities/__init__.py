"""Modality adapters: what differs between kinds of model, behind one interface (edgekd.pipeline.sequence).

    classifier/   image classifiers and feature-vector models over a DataBundle (edgekd compress)
    text/         Hugging Face encoders on the user's texts (edgekd hf-compress, compress --teacher hf:PATH)
    decoder/      causal language models (hf:PATH with a *ForCausalLM, gguf:FILE): token KD, KV-cache ONNX, int4

A new kind of model is a new package here with the same methods; the
pipeline, the shipping rule and the report writer stay as they are.
"""
