"""Transports that join the link's roles across processes: MQTT with reliable ordered links
(``mqtt``), the message encoding (``wire``), the schema every message from the broker is
parsed with (``schema``), run tokens and signatures (``session``), the plan's check of link
messages (``admission``), the roles as processes (``roles``, ``multiprocess``) and the brokers
a run can start by itself (``brokers``, ``amqtt_broker``)."""
