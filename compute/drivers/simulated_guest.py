"""What a simulated machine does inside: a shell on its serial console and plausible usage counters.

Neither keeps state in the database: the console's shell lives as long as the session (like a serial login that
ends when you hang up), and the counters are a pure function of the domain and the time, so every process reads
the same figures and a graph of them looks like a machine's day: a daily swell, a slower rhythm and short ripples.
"""

from __future__ import annotations

import hashlib
import math
import shlex
import threading
import time
from datetime import UTC, datetime

from compute.drivers.base import DomainCounters, QueuedConsole

# --- usage counters --------------------------------------------------------------------------------------------

# (mean rate, [(amplitude, period in seconds), ...]) per counter; every amplitude sum stays below its mean, so a rate
# never goes negative and each counter is the closed-form integral of its rate.
CPU_SHAPE = (0.22, [(0.12, 86_400), (0.05, 10_800), (0.02, 1_260)])  # share of each vCPU
DISK_READ_SHAPE = (180_000.0, [(100_000.0, 86_400), (40_000.0, 7_200), (15_000.0, 1_500)])  # bytes per second
DISK_WRITE_SHAPE = (120_000.0, [(60_000.0, 86_400), (35_000.0, 14_400), (10_000.0, 1_140)])
NET_RX_SHAPE = (60_000.0, [(35_000.0, 86_400), (12_000.0, 5_400), (5_000.0, 1_380)])
NET_TX_SHAPE = (240_000.0, [(150_000.0, 86_400), (50_000.0, 9_000), (15_000.0, 1_620)])


def _phases(uuid: str, count: int) -> list[float]:
    digest = hashlib.sha256(uuid.encode()).digest()
    return [digest[index] / 256 * 2 * math.pi for index in range(count)]


def _integral(shape, phases: list[float], seconds: float) -> float:
    """∫₀ᵗ mean + Σ aᵢ·sin(2πs/Pᵢ + φᵢ) ds."""
    mean, waves = shape
    total = mean * seconds
    for (amplitude, period), phase in zip(waves, phases, strict=False):
        omega = 2 * math.pi / period
        total += amplitude / omega * (math.cos(phase) - math.cos(omega * seconds + phase))
    return total


def synthetic_counters(*, uuid: str, vcpus: int, at: datetime) -> DomainCounters:
    """The counters a simulated domain shows at `at` (counted from the epoch: they only ever grow)."""
    seconds = at.timestamp()
    phases = _phases(uuid, 15)
    return DomainCounters(
        vcpus=vcpus,
        cpu_time_ns=int(_integral(CPU_SHAPE, phases[0:3], seconds) * vcpus * 1e9),
        disk_read_bytes=int(_integral(DISK_READ_SHAPE, phases[3:6], seconds)),
        disk_write_bytes=int(_integral(DISK_WRITE_SHAPE, phases[6:9], seconds)),
        net_rx_bytes=int(_integral(NET_RX_SHAPE, phases[9:12], seconds)),
        net_tx_bytes=int(_integral(NET_TX_SHAPE, phases[12:15], seconds)),
    )


# --- the console's shell ---------------------------------------------------------------------------------------


class SimulatedConsole(QueuedConsole):
    """A small shell-like responder: echoes what is typed (with backspace and Ctrl-C), answers a few commands."""

    def __init__(self, *, name: str, private_ip: str, vcpus: int, ram_mib: int, booted_at: datetime | None = None):
        self.name, self.private_ip, self.vcpus, self.ram_mib = name, private_ip, vcpus, ram_mib
        super().__init__()
        self.booted_at = booted_at or datetime.now(UTC)
        self._line = ""
        self._escape = ""  # an escape sequence being received (arrow keys): swallowed, not echoed
        self._lock = threading.Lock()

    @property
    def prompt(self) -> str:
        return f"root@{self.name}:~# "

    # --- ConsoleSession --------------------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self._closed.is_set():
            return
        with self._lock:
            for char in data.decode("utf-8", errors="replace"):
                self._key(char)

    def close(self) -> None:
        self._finish()

    # --- the line discipline ---------------------------------------------------------------------------------------
    def _emit(self, text: str) -> None:
        self._received(text.replace("\n", "\r\n").encode())

    def _key(self, char: str) -> None:
        if self._escape:
            self._escape += char
            if len(self._escape) > 1 and (char.isalpha() or char == "~" or len(self._escape) > 8):
                self._escape = ""
            return
        if char == "\x1b":
            self._escape = char
        elif char in "\r\n":
            line, self._line = self._line, ""
            self._emit("\n")
            self._emit(self._run(line.strip()))
            self._emit(self.prompt)
        elif char in "\x7f\b":
            if self._line:
                self._line = self._line[:-1]
                self._received(b"\b \b")
        elif char == "\x03":
            self._line = ""
            self._emit("^C\n" + self.prompt)
        elif char == "\x0c":
            self._emit("\x1b[H\x1b[2J" + self.prompt + self._line)
        elif char.isprintable() or char == "\t":
            char = " " if char == "\t" else char
            self._line += char
            self._emit(char)

    def _run(self, line: str) -> str:
        if not line:
            return ""
        try:
            words = shlex.split(line)
        except ValueError as error:
            return f"sh: syntax error: {error}\n"
        command, arguments = words[0], words[1:]
        uptime = int(time.time() - self.booted_at.timestamp())
        total_kib = self.ram_mib * 1024
        answers = {
            "help": "Commands: echo, hostname, uname [-a], whoami, id, uptime, date, nproc, free, ip addr, pwd, ls, "
            "cat /etc/os-release, clear, exit\n",
            "hostname": f"{self.name}\n",
            "whoami": "root\n",
            "id": "uid=0(root) gid=0(root) groups=0(root)\n",
            "pwd": "/root\n",
            "ls": "",
            "nproc": f"{self.vcpus}\n",
            "date": datetime.now(UTC).strftime("%a %b %d %H:%M:%S UTC %Y") + "\n",
            "uptime": f" up {uptime // 60} min,  1 user,  load average: 0.08, 0.03, 0.01\n",
            "free": (
                "               total        used        free\n"
                f"Mem:     {total_kib:>11} {total_kib // 5:>11} {total_kib * 4 // 5:>11}\n"
            ),
            "clear": "\x1b[H\x1b[2J",
            "exit": "logout\n\nHangar simulated machine\n",
            "logout": "logout\n\nHangar simulated machine\n",
        }
        if command == "echo":
            return " ".join(arguments) + "\n"
        if command == "uname":
            if arguments[:1] == ["-a"]:
                return f"Linux {self.name} 6.1.0-simulated #1 SMP x86_64 GNU/Linux\n"
            return "Linux\n"
        if command == "ip" and arguments[:1] in (["a"], ["addr"], ["address"]):
            return (
                "1: lo: <LOOPBACK,UP> mtu 65536\n    inet 127.0.0.1/8 scope host lo\n"
                f"2: eth0: <BROADCAST,MULTICAST,UP> mtu 1500\n    inet {self.private_ip}/16 scope global eth0\n"
            )
        if command == "cat" and arguments == ["/etc/os-release"]:
            return 'NAME="Hangar simulated Linux"\nVERSION_ID="1"\n'
        if command in answers:
            return answers[command]
        return f"sh: {command}: not found\n"
