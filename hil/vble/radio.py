"""The virtual radio: one Bumble :class:`LocalLink` and an HCI endpoint for phones.

Every TCP connection to the endpoint gets a fresh virtual controller on the link, spoken
to over HCI with H4 framing (so a phone opens it with Bumble's ``tcp-client:`` transport).
When the connection closes the controller leaves the radio: its links to other devices are
terminated like a supervision timeout, as when a phone walks out of range.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging

from bumble import hci, ll
from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport.common import StreamPacketSource

logger = logging.getLogger(__name__)

CONNECTION_TIMEOUT = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR
NOT_ESTABLISHED = hci.HCI_ErrorCode.CONNECTION_FAILED_TO_BE_ESTABLISHED_ERROR
_EXT_REPORT = hci.HCI_LE_Extended_Advertising_Report_Event
_LEGACY_REPORT = hci.HCI_LE_Advertising_Report_Event


class RadioController(Controller):
    """A Bumble controller that behaves like a real one where the bench depends on it.

    * Scan responses carry the advertiser's real data. Bumble's emulated controller
      answers an active scan with a copy of the advertising data; a real one returns the
      advertiser's scan response (here: the lock ID as the complete local name, which
      does not fit next to a 128-bit UUID in 31 bytes).
    * A connection request the advertiser no longer takes fails on the central too.
      Bumble's central reports the connection complete as soon as it sends CONNECT_IND;
      when that request reaches an advertiser that stopped in between (the lock restarts
      advertising at every connect and disconnect, and a second phone may have taken
      the slot), Bumble drops it silently, so the phone held a link nobody answered
      until its timeout ("a reply is lost" after a reconnect, seen under load). A real
      central's link fails to be established within six connection events (HCI
      0x3E): that is what the phone sees here, at once.
    """

    def on_le_connect_ind(self, packet: ll.ConnectInd) -> None:
        """Accept the request if advertising, else fail the central's link (0x3E)."""
        super().on_le_connect_ind(packet)
        ours = packet.advertiser_address in (self.random_address, self.public_address)
        if not ours or packet.initiator_address in self.le_connections or self.link is None:
            return
        logger.info("[%s] connection request from %s while not advertising: refused (0x3E)",
                    self.name, packet.initiator_address)
        try:
            self.link.send_ll_control_pdu(sender_address=packet.advertiser_address,
                                          receiver_address=packet.initiator_address,
                                          packet=ll.TerminateInd(NOT_ESTABLISHED))
        except Exception:  # the central left the radio meanwhile
            logger.debug("no central to refuse", exc_info=True)

    def _scan_response(self, address: hci.Address) -> bytes | None:
        for c in self.link.controllers:
            adv = c.le_legacy_advertiser
            if adv.enabled and adv.address == address:
                return bytes(adv.scan_response_data)
            for s in c.advertising_sets.values():
                if s.enabled and s.address == address:
                    return bytes(s.scan_response_data)
        return None

    def _fix_report(self, report, scan_type: int):
        if report.event_type & scan_type == scan_type and scan_type != 0:
            data = self._scan_response(report.address)
            if data is not None:
                return dataclasses.replace(report, data=data)
        return report

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        """Send to the host, rewriting scan-response reports (see the class doc)."""
        if isinstance(packet, _EXT_REPORT):
            scan = int(_EXT_REPORT.EventType.SCAN_RESPONSE)
            packet = _EXT_REPORT([self._fix_report(r, scan) for r in packet.reports])
        elif isinstance(packet, _LEGACY_REPORT):
            packet = _LEGACY_REPORT([
                dataclasses.replace(r, data=self._scan_response(r.address) or r.data)
                if r.event_type == _LEGACY_REPORT.EventType.SCAN_RSP else r
                for r in packet.reports])
        super().send_hci_packet(packet)


def drop_links(controller: Controller, reason: int = CONNECTION_TIMEOUT) -> int:
    """Terminate every LE link of ``controller`` on both ends; returns how many."""
    links = list(controller.le_connections.values())
    for conn in links:
        conn.send_ll_control_pdu(ll.TerminateInd(reason))
        controller.on_le_disconnected(conn, reason)
    return len(links)


class _SocketSink:
    """Writes HCI packets from a controller to its phone's TCP connection."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def on_packet(self, packet: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(packet)


class _PhoneProtocol(asyncio.Protocol):
    """One phone's HCI connection: a controller created on connect, removed on close."""

    def __init__(self, radio: Radio) -> None:
        self.radio = radio
        self.source = StreamPacketSource()
        self.controller: Controller | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        name = f"PHONE{next(self.radio.serial)}"
        self.controller = RadioController(name, host_source=self.source,
                                     host_sink=_SocketSink(transport), link=self.radio.link)

    def data_received(self, data: bytes) -> None:
        self.source.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        ctrl = self.controller
        self.controller = None
        if ctrl is not None:
            drop_links(ctrl)
            self.radio.link.remove_controller(ctrl)


class Radio:
    """The link all virtual controllers of one bench share."""

    def __init__(self) -> None:
        self.link = LocalLink()
        self.serial = itertools.count(1)
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Open the phones' HCI endpoint; returns its TCP port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _PhoneProtocol(self), host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    @property
    def transport_spec(self) -> str:
        """The Bumble transport name a phone opens: ``tcp-client:127.0.0.1:PORT``."""
        return f"tcp-client:127.0.0.1:{self.port}"

    async def close(self) -> None:
        """Stop accepting phones."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
