"""The parts every training loop in edgekd is built from, each with one job:

- loop.py:         one epoch (batches -> step function -> optimizer/scheduler step), the step plan, a time budget
- schedule.py:     optimizers and learning-rate schedules (warm-up then cosine / linear decay, one-cycle)
- checkpointer.py: last.pt (resume) and best.pt in the output folder, refused when the settings differ
- evaluation.py:   held-out accuracy (or agreement with the teacher) and best-epoch selection
- ddp.py:          torchrun ranks, device placement, the DDP wrapper, each rank's share of a batch
- fingerprints.py: content hashes of data and weights (whether a checkpoint, cache or memo still applies)

edgekd.distill.engine (images, feature vectors) and edgekd.hf.train (text) are the two trainers using them.
"""
