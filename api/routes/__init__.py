"""One router per noun. Each handler checks visibility, then calls the store or the operations service."""
