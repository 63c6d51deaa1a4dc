"""SIM line control for connected locks (docs/uplink.md, "SIM line lifecycle")."""
