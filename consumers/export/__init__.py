"""The export worker: `ExportRequested` into the ERP exactly once, through the ERP port."""
