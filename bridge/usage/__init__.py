"""Usage sync: the port every cloud implements (``ports``) and the loop that collects usage windows into the
store with their watermarks (``sync``)."""
