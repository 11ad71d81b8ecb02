"""Prints a port P such that P..P+COUNT-1 are all free on 127.0.0.1 (default COUNT 20)."""
import random
import socket
import sys

count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
for _ in range(200):
    base = random.randrange(20000, 60000 - count, 10)
    socks = []
    try:
        for p in range(base, base + count):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
        print(base)
        sys.exit(0)
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
sys.exit("no free port block")
