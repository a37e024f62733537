"""Usage records and the collector port: what any cloud must give the bridge to be billed."""
