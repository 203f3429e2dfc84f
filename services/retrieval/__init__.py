"""Similar-event retrieval: the HNSW window index, its per-frame vector store, and search with exact re-rank."""
