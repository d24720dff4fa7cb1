"""A name server for tests: answers every A query with one address, every other query with no
answer. Enough DNS (RFC 1035 §4) for glibc's resolver; it runs in a thread of the test."""

from __future__ import annotations

import socket
import struct
import threading

A, IN = 1, 1


class NameServer:
    def __init__(self, host: str, answer: str, port: int = 53) -> None:
        self.answer = socket.inet_aton(answer)
        self.queries: list[str] = []  # the names asked for, in order
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:
                return  # closed
            reply = self._reply(query)
            if reply:
                self.sock.sendto(reply, peer)

    def _reply(self, query: bytes) -> bytes:
        if len(query) < 12:
            return b""
        ident = query[:2]
        labels, offset = [], 12
        while offset < len(query) and query[offset]:
            length = query[offset]
            labels.append(query[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
            offset += 1 + length
        offset += 1
        if offset + 4 > len(query):
            return b""
        qtype, qclass = struct.unpack("!HH", query[offset : offset + 4])
        question = query[12 : offset + 4]
        self.queries.append(".".join(labels))
        answers = b""
        if qtype == A and qclass == IN:
            # The name as a pointer to the question's (offset 12), TTL 60, four bytes of address.
            answers = struct.pack("!HHHIH", 0xC00C, A, IN, 60, 4) + self.answer
        count = 1 if answers else 0
        header = ident + struct.pack("!HHHHH", 0x8180, 1, count, 0, 0)  # a response, no error
        return header + question + answers

    def close(self) -> None:
        self.sock.close()
