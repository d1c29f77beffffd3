"""SemMiner: hierarchical caption mining ("rein-then-expand") through an OpenAI-compatible MLLM server."""
