"""One module per pipeline; each registers its topics, tables and agent with the app."""
