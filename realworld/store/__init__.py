"""The live Mirror Store: content-addressed snapshot chunks and manifests kept in an object backend."""
