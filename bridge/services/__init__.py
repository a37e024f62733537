"""The service layer: what the CLI, the daemon's jobs and the web pages ask the bridge to do."""
