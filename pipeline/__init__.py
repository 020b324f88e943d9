"""Stream processing: the approval-queue rules (pure) and the faust app that wires them."""
