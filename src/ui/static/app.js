// berth web interface: progressive enhancement only; every flow works without it.
