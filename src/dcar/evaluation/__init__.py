"""Evaluation: exact chunked Recall@K, hard-negative accuracy, embedding pipeline, `evaluate`."""
