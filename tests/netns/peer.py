"""A stand-in for a container (or an outside server) in a test-made network namespace.

Usage: python peer.py NAME PORT. Listens on 0.0.0.0:PORT, TCP and UDP, and answers each
connection (each datagram) with "NAME <the peer's address>", prints "ready", then runs commands
from stdin, one a line: "connect HOST PORT" (TCP) or "udp HOST PORT" prints "ok <the answer>"
or "failed <why>".
"""

import socket
import sys
import threading


def serve(listener: socket.socket, name: str) -> None:
    while True:
        conn, peer = listener.accept()
        with conn:
            conn.sendall(f"{name} {peer[0]}\n".encode())


def answer_datagrams(udp: socket.socket, name: str) -> None:
    while True:
        _, peer = udp.recvfrom(512)
        udp.sendto(f"{name} {peer[0]}\n".encode(), peer)


def ask(host: str, port: int) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(1.5)
        try:
            udp.sendto(b"?", (host, port))
            return "ok " + udp.recv(512).decode().strip()
        except OSError as exc:
            return f"failed {type(exc).__name__}"


def connect(host: str, port: int) -> str:
    try:
        with socket.create_connection((host, port), timeout=1.5) as conn:
            conn.settimeout(1.5)
            return "ok " + conn.makefile().readline().strip()
    except OSError as exc:
        return f"failed {type(exc).__name__}"


def main() -> None:
    name, port = sys.argv[1], int(sys.argv[2])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(16)
    threading.Thread(target=serve, args=(listener, name), daemon=True).start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", port))
    threading.Thread(target=answer_datagrams, args=(udp, name), daemon=True).start()
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if words and words[0] == "connect":
            print(connect(words[1], int(words[2])), flush=True)
        elif words and words[0] == "udp":
            print(ask(words[1], int(words[2])), flush=True)


main()
