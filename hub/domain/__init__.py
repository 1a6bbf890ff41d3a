"""Pure types and rules of the contact centre: no I/O, no wall clock."""
