"""Sources: file tail, syslog (UDP/TCP), HTTP push, health probes. Importing registers them."""

from collectors.sources.http import HttpPushSource
from collectors.sources.probe import ProbeSource
from collectors.sources.syslog import SyslogTcpSource, SyslogUdpSource
from collectors.sources.tail import FileTailSource

__all__ = ["FileTailSource", "HttpPushSource", "ProbeSource", "SyslogTcpSource", "SyslogUdpSource"]
