"""Getting Hypersim's bytes: sources, the HTTP transport, the remote zip reader and the selective, resumable, verified scene fetch."""
