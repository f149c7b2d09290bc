"""`simplane-cli`, the customer command line (Typer + Rich) on `simplane.client`."""
