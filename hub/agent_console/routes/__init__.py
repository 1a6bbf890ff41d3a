"""The REST API's route tables, one module per resource."""
