"""The files every stage shares: atomic writes, clip ids, caption tables, the fMRI store, embeddings and
predictions. Library code: imports no stage."""
