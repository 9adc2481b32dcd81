"""Evaluation: how well scores agree with gold judgements."""
