"""simplane: an open-source, self-hostable IoT Programmable SIM platform."""

__version__ = "0.1.0"
