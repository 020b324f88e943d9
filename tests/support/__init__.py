"""Every helper the tests share, one module per job (events, kafka, waiting, processes...)."""
