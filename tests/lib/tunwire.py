#!/usr/bin/python3
"""tunwire.py: a wire that can go silent, for partition tests.

Creates TUN device NAME with address LOCAL/24 and answers for PEER (the
next address): every IPv4 packet sent to PEER comes back with source and
destination swapped, so a client connecting to PEER:port reaches a server
listening on LOCAL:port, and every packet of that connection, both ways,
passes through this process. SIGSTOP it and the packets stop, with no FIN
and no RST: a silent network partition (SIGCONT heals it). Swapping the
addresses keeps the IP and TCP checksums valid.

  tunwire.py NAME LOCAL READY_FILE    (as root, in a network namespace)
"""
import fcntl
import ipaddress
import os
import struct
import subprocess
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def main():
    name, local, ready = sys.argv[1], sys.argv[2], sys.argv[3]
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    subprocess.run(["ip", "addr", "add", local + "/24", "dev", name], check=True)
    subprocess.run(["ip", "link", "set", name, "up"], check=True)
    with open(ready, "w") as f:
        f.write(str(ipaddress.ip_address(local) + 1) + "\n")
    while True:
        p = bytearray(os.read(fd, 65535))
        if len(p) >= 20 and p[0] >> 4 == 4:
            p[12:16], p[16:20] = p[16:20], p[12:16]
            os.write(fd, p)


if __name__ == "__main__":
    main()
