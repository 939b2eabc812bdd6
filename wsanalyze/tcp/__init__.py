"""TCP layer: packet header parsing and per-connection stream reassembly."""
