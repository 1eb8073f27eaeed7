"""creditledger: events, policy terms, the store, the application service, importers and the CLI."""
