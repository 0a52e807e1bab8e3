"""Request and response models of the coordinator's HTTP API, one module per resource."""
