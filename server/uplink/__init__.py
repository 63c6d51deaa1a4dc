"""The connected-lock uplink (docs/uplink.md): broker accounts, topics, the publication
outbox and the consumer of what locks publish."""
