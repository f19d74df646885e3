"""Transports that join the link's roles across processes: MQTT (``mqtt``), with the
message encoding (``wire``), reliable ordered delivery on top of a broker (``reliable``) and the
brokers a run can start by itself (``brokers``)."""
