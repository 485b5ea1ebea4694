#!/usr/bin/env python3
"""A TLS front for the Messages API stand-in (the gateway tests' https upstream): accepts TLS on
127.0.0.1:PORT with CERT/KEY and pipes each connection's bytes to 127.0.0.1:BACKEND.

    tls_front.py PORT BACKEND CERT KEY
"""
import socket
import ssl
import sys
import threading


def pipe(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(conn, backend):
    try:
        up = socket.create_connection(("127.0.0.1", backend))
    except OSError:
        conn.close()
        return
    threading.Thread(target=pipe, args=(conn, up), daemon=True).start()
    pipe(up, conn)


def main():
    port, backend, cert, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", port))
    print("listening", flush=True)
    while True:
        raw, _ = listener.accept()
        try:
            conn = context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            continue
        threading.Thread(target=serve, args=(conn, backend), daemon=True).start()


if __name__ == "__main__":
    main()
