"""The fixed wording of incident emails in Vietnamese and English, and the recommended first
steps per kind of incident. The wording is the ``email`` domain of the translation catalogue
(``soc/locale/<lang>/LC_MESSAGES/email.po``, :mod:`soc.i18n`); the first steps are lists and stay
here. Templates read these through ``t`` and ``steps``; an admin's template override can use them
too. Wording only: no formatting, no data.
"""

from __future__ import annotations

from soc.i18n import Texts
from soc.notify.models import Language, NoticeEvent


def labels(language: Language) -> Texts:
    """The wording of emails in ``language``: the ``email`` domain of the catalogue, as a mapping
    (templates write ``t.what``, ``t["severity.high"]``)."""
    return Texts("email", language.value)


FIRST_STEPS: dict[str, dict[Language, tuple[str, ...]]] = {
    "generic": {
        Language.VI: (
            "Mở sự cố trên bảng điều khiển và xem các sự kiện mẫu.",
            "Kiểm tra hệ thống liên quan còn hoạt động và liên hệ nhà cung cấp nếu cần.",
            "Tiếp nhận sự cố để dừng việc chuyển cấp.",
        ),
        Language.EN: (
            "Open the incident in the dashboard and read the sample events.",
            "Check that the system involved still works; contact its vendor if needed.",
            "Acknowledge the incident to stop the escalation.",
        ),
    },
    "outage": {
        Language.VI: (
            "Kiểm tra máy chủ và đường truyền của hệ thống tại địa bàn bị ảnh hưởng.",
            "Xác nhận người dân có truy cập được dịch vụ không (thử từ mạng 4G).",
            "Báo nhà cung cấp phần mềm kèm thời điểm bắt đầu và mã lỗi.",
        ),
        Language.EN: (
            "Check the servers and the network link of the affected locality.",
            "Confirm whether citizens can reach the service (try from a 4G network).",
            "Tell the software vendor the start time and the error codes.",
        ),
    },
    "otp": {
        Language.VI: (
            "Kiểm tra trạng thái cổng SMS OTP và hạn mức tin nhắn với nhà mạng.",
            "Xem các số điện thoại/IP lặp lại trong sự kiện mẫu (có thể là tấn công dò mã).",
        ),
        Language.EN: (
            "Check the SMS OTP gateway status and the message quota with the carrier.",
            "Look for repeated phone numbers or IPs in the samples (possible code guessing).",
        ),
    },
    "sync": {
        Language.VI: (
            "Kiểm tra kết nối đồng bộ tới Cổng Dịch vụ công quốc gia.",
            "Đối chiếu số hồ sơ chưa đồng bộ theo từng xã/phường.",
        ),
        Language.EN: (
            "Check the synchronisation link to the National Public Service Portal.",
            "Compare the number of unsynchronised dossiers per commune.",
        ),
    },
    "login": {
        Language.VI: (
            "Kiểm tra kết nối tới VNeID (chứng chỉ, địa chỉ chuyển hướng, đồng hồ máy chủ).",
            "Chặn tạm thời các IP có nhiều lần đăng nhập sai.",
        ),
        Language.EN: (
            "Check the link to VNeID (certificates, redirect URL, server clock).",
            "Temporarily block IPs with many failed logins.",
        ),
    },
    "web-attack": {
        Language.VI: (
            "Xem các yêu cầu mẫu: đây có thể là dò quét hoặc tấn công ứng dụng web.",
            "Chặn IP nguồn trên tường lửa và cập nhật bản vá cho cổng thông tin.",
        ),
        Language.EN: (
            "Read the sample requests: this may be scanning or a web application attack.",
            "Block the source IPs at the firewall and patch the portal.",
        ),
    },
}


def event_label(language: Language, event: NoticeEvent) -> str:
    return labels(language)[f"event.{event.value}"]


def status_label(language: Language, status: str) -> str:
    """The incident status in words; an unknown status is shown as it is (templates escape it)."""
    return labels(language).get(f"status.{status}", status)


def steps(key: str, language: Language) -> tuple[str, ...]:
    """The first steps for an incident kind; the generic ones for an unknown key."""
    return FIRST_STEPS.get(key, FIRST_STEPS["generic"])[language]
