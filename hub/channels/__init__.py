"""Channel adapters: one package per way a customer reaches the hub, all shaped alike."""
