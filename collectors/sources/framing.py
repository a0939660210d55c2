"""Syslog over TCP: bytes of one connection → frames (RFC 6587), resynchronised after a broken one.

A frame is octet-counted (``LEN SP MSG``) when it starts with a digit and newline-terminated
otherwise; both may be mixed on one connection. A count is believed only when it is a frame size
(1 to ``max_frame``), its message starts with ``<PRI>`` and holds no other frame's start (``LEN SP
<PRI>``, or ``<PRI>`` after a newline). A count that fails (``999999999``, a count too
short or too long for its message) must not swallow the frames after it: the framer
*resynchronises* at the next place a frame can start (a ``LEN SP <PRI>`` whose count checks out, a
``<PRI>``, or the start of the next line) and hands the bytes it skipped over as one broken frame
with the reason, which the collector dead-letters. So every byte received is in a frame or a dead
letter. A newline-terminated message longer than ``max_frame`` is cut into pieces (each then
dead-lettered as too long). This module is pure: no sockets, no clock.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_COUNT = re.compile(rb"(\d{1,10}) ")
_DIGITS = re.compile(rb"\d{1,10}")
#: Where a frame may start again after a broken one; inside a message (``strict``), only a
#: count or an RFC 5424 header (``<PRI>1 `` and a date or ``-``) are taken as one.
_RESTART = re.compile(rb"(\d{1,10}) <\d{1,3}>|<\d{1,3}>")
_RESTART_STRICT = re.compile(rb"(\d{1,10}) <\d{1,3}>|<\d{1,3}>1 (?:\d{4}-|- )")
#: What may follow a frame: another frame, or the end of a line.
_NEXT = re.compile(rb"\d{1,10} <\d{1,3}>|<\d{1,3}>|\r?\n")
_PRI = re.compile(rb"<\d{1,3}>")
_HEADER = re.compile(rb"\d{1,10} <\d{1,3}>")
#: A frame start (a count, an RFC 5424 header), and what its first bytes may look like.
_START = re.compile(rb"\d{1,10} <\d{1,3}>|<\d{1,3}>1 (?:\d{4}-|- )")
_START_PREFIX = re.compile(
    rb"\d{1,10}(?: (?:<(?:\d{1,3}>?)?)?)?|<(?:\d{1,3}(?:>(?:1(?: (?:\d{1,4}|-)?)?)?)?)?"
)
_PRI_START = re.compile(rb"<\d{0,3}>?")
#: Another frame's start inside a frame: the sign of a count too long for its message.
_INSIDE = re.compile(rb"\d{1,10} <\d{1,3}>|\n<\d{1,3}>|<\d{1,3}>1 (?:\d{4}-|- )")
_BLANK = b" \t\r\n"


#: :meth:`Framer._restart`: more bytes are needed to tell where the next frame starts.
WAIT = -1


#: Bytes that may follow a frame: a count, a <PRI>, the end of a line.
_STARTS = b"0123456789<\r\n"


def _cut_header(buf: bytearray, start: int, end: int) -> bool:
    """Whether a frame ends before its syslog header does (RFC 5424: 7 fields, RFC 3164: 4)."""
    fields = 7 if _PRI.match(buf, start, end) and buf.find(b">1 ", start, end) >= 0 else 4
    return buf.count(b" ", start, end) < fields - 1


class Frame(NamedTuple):
    data: bytes
    #: Set for bytes that are no frame: the reason of their dead letter.
    error: str | None = None


class Framer:
    """Frames of one connection: :meth:`feed` what arrives, :meth:`close` at its end."""

    def __init__(self, max_frame: int = 256 * 1024) -> None:
        self.max_frame = max_frame
        self.buf = bytearray()
        self.pos = 0
        self._quiet = False

    def feed(self, data: bytes) -> list[Frame]:
        self.buf += data
        return self._frames(final=False)

    def quiet(self) -> list[Frame]:
        """Nothing arrived for a while: a frame whose end cannot be told from the start of the
        next (a message ending in digits) is taken as it is; none is coming."""
        self._quiet = True
        try:
            return self._frames(final=False)
        finally:
            self._quiet = False

    def close(self) -> list[Frame]:
        """The connection ended: what is left is one last frame, or broken bytes."""
        return self._frames(final=True)

    def pending(self) -> int:
        """1 while part of a frame waits for the rest of its bytes, else 0."""
        return 1 if bytes(self.buf[self.pos :]).strip(_BLANK) else 0

    def _frames(self, final: bool) -> list[Frame]:
        out: list[Frame] = []
        while (frame := self._next(final)) is not None:
            if frame.data or frame.error:
                out.append(frame)
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0
        return out

    def _next(self, final: bool) -> Frame | None:
        buf, p = self.buf, self.pos
        while p < len(buf) and buf[p] in _BLANK:  # blank lines between frames are no frames
            p += 1
        self.pos = p
        if p >= len(buf):
            return None
        if not 0x30 <= buf[p] <= 0x39:
            return self._line(p, final)
        counted = _COUNT.match(buf, p)
        if counted is None:
            if not final and _DIGITS.fullmatch(buf, p):
                return None  # the count is still arriving
            return self._line(p, final)  # a line that starts with a digit
        size, start = int(counted.group(1)), counted.end()
        if not 0 < size <= self.max_frame:
            return self._broken(p, start, f"octet count {size} is not a frame size "
                                          f"(1 to max_frame {self.max_frame})", final)  # fmt: skip
        fits = self._fits(start, size, final)
        if fits is None:
            return None  # wait for the rest of the frame
        if not fits:
            why = f"octet count {size} does not match its message (another frame inside it)"
            return self._broken(p, start, why, final)
        self.pos = start + size
        return Frame(bytes(buf[start : start + size]))

    def _fits(self, start: int, size: int, final: bool, shallow: bool = False) -> bool | None:
        """Whether ``size`` bytes at ``start`` are a frame; None: cannot tell yet.

        A frame starts with ``<PRI>`` and holds no other frame's start: a count too long for
        its message takes the next frame's ``LEN SP <PRI>`` (or a line's ``<PRI>``) in."""
        buf, end = self.buf, start + size
        have = min(end, len(buf))
        if have - start < 5 and end > len(buf) and not final:
            # Its <PRI> is still arriving, or the bytes already say it is no frame.
            return None if have == start or _PRI_START.fullmatch(buf, start, have) else False
        if not _PRI.match(buf, start, have):
            return False
        if _INSIDE.search(buf, start + 1, have) is not None:
            return False
        if end > len(buf):
            return False if final else None
        cut = True if shallow else self._cuts_count(start, end, final)
        if cut is not True:
            return cut  # the frame ends inside the next frame's count: refused, or wait
        if _cut_header(buf, start, end):  # a count so short it ends inside its own header?
            if shallow:
                return False  # not believable as the frame after another
            if end == len(buf):
                return True if final or self._quiet else None
            return self._starts_frame(end, final)  # believable only if a frame follows
        return True

    def _cuts_count(self, start: int, end: int, final: bool) -> bool | None:
        """True if the frame ends cleanly, False if it ends inside the next frame's start (a
        count too long by a few bytes takes the next ``LEN SP <PRI>`` or ``<PRI>1 date`` in
        part); None: the bytes to tell are not there yet."""
        buf = self.buf
        tails = [q for q in range(max(start + 1, end - 24), end)
                 if buf[q] in _STARTS and _START_PREFIX.fullmatch(buf, q, end)]  # fmt: skip
        if not tails:
            return True  # the common case: nothing at the end looks like a frame start
        decided = final or self._quiet
        if end == len(buf):
            return True if decided else None
        for q in tails:  # ending inside "LEN SP <PRI>" after its digits, or in "<PRI>1 date"
            if buf[q] == 0x3C or 0x20 in buf[q:end]:
                if _START.match(buf, q):
                    return False
                if not decided and _START_PREFIX.fullmatch(buf, q):
                    return None
        starts = self._starts_frame(end, final)
        if starts is not False:
            return starts
        for q in tails:
            if _START.match(buf, q):
                return False
            if not decided and _START_PREFIX.fullmatch(buf, q):
                return None
        return True

    def _starts_frame(self, at: int, final: bool) -> bool | None:
        """Whether a believable frame (or a line end) starts at ``at``; None: cannot tell yet."""
        buf = self.buf
        if buf[at] in b"\r\n":
            return True
        header = _HEADER.match(buf, at)
        if header is None:
            return _PRI.match(buf, at) is not None
        space = buf.index(b" ", at)
        size = int(buf[at:space])
        if not 0 < size <= self.max_frame:
            return False
        return self._fits(space + 1, size, final, shallow=True)

    def _line(self, p: int, final: bool) -> Frame | None:
        """A newline-terminated message at ``p``, cut short where a frame starts inside it
        (octet-counted frames glued to it); bytes that are no message are a broken frame."""
        buf = self.buf
        newline = buf.find(b"\n", p)
        message = buf[p] == 0x3C  # <PRI>
        restart = self._restart(p + 1, newline if newline >= 0 else len(buf), final, message)
        if restart == WAIT:
            return None
        if restart is not None:
            self.pos = restart
            why = None if message else "bytes before a frame start (resynchronised)"
            return Frame(bytes(buf[p:restart]).rstrip(_BLANK), why)
        if newline < 0:
            if len(buf) - p > self.max_frame:
                self.pos = p + self.max_frame + 1
                why = f"message without newline longer than max_frame {self.max_frame}: cut"
                return Frame(bytes(buf[p : self.pos]), why)
            if not final:
                return None
            self.pos = len(buf)
            return Frame(bytes(buf[p:]).rstrip(b"\r"))
        self.pos = newline + 1
        return Frame(bytes(buf[p:newline]).rstrip(b"\r"))

    def _broken(self, p: int, frm: int, why: str, final: bool) -> Frame | None:
        """Bytes from ``p`` up to where a frame can start again, as one broken frame."""
        buf = self.buf
        newline = buf.find(b"\n", frm)
        # From after the first byte of its message: the broken frame's own <PRI> is no restart.
        restart = self._restart(frm + 1, newline if newline >= 0 else len(buf), final)
        if restart == WAIT:
            return None
        if restart is None and newline >= 0:
            restart = newline + 1
        if restart is None:
            if not final and len(buf) - p <= 2 * self.max_frame:
                return None  # where it ends is not known yet
            restart = len(buf)
        self.pos = restart
        return Frame(bytes(buf[p:restart]).rstrip(_BLANK), why)

    def _restart(self, frm: int, limit: int, final: bool, strict: bool = False) -> int | None:
        """The first place in ``[frm, limit)`` where a believable frame starts; None if there
        is none, :data:`WAIT` if the bytes to tell are not there yet."""
        buf = self.buf
        for found in (_RESTART_STRICT if strict else _RESTART).finditer(buf, frm, limit):
            if found.group(1) is None:
                return found.start()  # a <PRI>: a newline-terminated message
            first, last = found.span(1)
            # The count may be glued to the bytes before it ("...msg1" + "22 <13>" reads
            # "122"): of the counts that check out, the shortest whose frame is followed by
            # another frame (or ends the stream); else the longest.
            tried = [(at, self._fits(last + 1, int(buf[at:last]), final))
                     for at in range(last - 1, first - 1, -1)
                     if 0 < int(buf[at:last]) <= self.max_frame]  # fmt: skip
            if any(fits is None for _at, fits in tried):
                return WAIT  # decided on the same bytes however they arrive
            fitting = [at for at, fits in tried if fits]
            for at in fitting:
                end = last + 1 + int(buf[at:last])
                if (end < len(buf) and _NEXT.match(buf, end)) or (end == len(buf) and final):
                    return at
            if len(fitting) > 1 and not final:
                return WAIT
            if fitting:  # none confirmed: the whole number (a glued count is the rarer case)
                return fitting[-1]
            return last + 1  # no count checks out: the <PRI> after it starts a line
        return None
