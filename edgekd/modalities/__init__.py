"""Modality adapters: what differs between kinds of model, behind one interface (edgekd.pipeline.sequence).

    classifier/   image classifiers and feature-vector models over a DataBundle (edgekd compress)
    text/         Hugging Face encoders on the user's texts (edgekd hf-compress, compress --teacher hf:PATH)

A new kind of model (e.g. decoder language models) is a new package here with the same methods; the
pipeline, the shipping rule and the report writer stay as they are.
"""
