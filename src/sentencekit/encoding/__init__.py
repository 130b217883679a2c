"""The encode pipeline: input checks, token-length batching, the batch loop and output conversion."""
