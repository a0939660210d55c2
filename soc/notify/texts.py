"""The fixed wording of incident emails in Vietnamese and English, and the recommended first
steps per kind of incident. Templates read these through ``t`` and ``steps``; an admin's template
override can use them too. Wording only: no formatting, no data.
"""

from __future__ import annotations

from soc.notify.models import Language, NoticeEvent

Texts = dict[str, str]

LABELS: dict[Language, Texts] = {
    Language.VI: {
        "event.new": "Sự cố mới",
        "event.severity_raised": "Mức độ tăng",
        "event.escalation": "Chuyển cấp (chưa được tiếp nhận)",
        "event.resolved": "Đã khắc phục",
        "event.communes_added": "Thêm xã/phường bị ảnh hưởng",
        "event.reopened": "Mở lại (sự cố vẫn tiếp diễn)",
        "status.new": "Mới",
        "status.acknowledged": "Đã tiếp nhận",
        "status.investigating": "Đang xử lý",
        "status.resolved": "Đã khắc phục",
        "status.false_positive": "Cảnh báo nhầm",
        "severity.informational": "Thông tin",
        "severity.low": "Thấp",
        "severity.medium": "Trung bình",
        "severity.high": "Cao",
        "severity.critical": "Nghiêm trọng",
        "what": "Điều gì đã xảy ra",
        "where": "Địa bàn",
        "province": "Tỉnh/thành phố",
        "wards": "Xã/phường",
        "all_wards": "toàn tỉnh",
        "service": "Hệ thống",
        "since": "Bắt đầu từ",
        "last_seen": "Lần cuối ghi nhận",
        "severity": "Mức độ",
        "status": "Trạng thái",
        "evidence": "Bằng chứng",
        "alerts": "Số cảnh báo",
        "events": "Số sự kiện",
        "error_codes": "Mã lỗi thường gặp",
        "samples": "Sự kiện mẫu (nguyên văn từ nhật ký)",
        "first_steps": "Việc cần làm trước tiên",
        "open": "Xem sự cố trên bảng điều khiển",
        "escalation_note": (
            "Sự cố chưa được tiếp nhận trong thời hạn; email này chuyển lên cấp trên."
        ),
        "resolved_note": "Sự cố đã được đánh dấu là đã khắc phục. Không cần thao tác thêm.",
        "digest": "Tổng hợp sự cố",
        "digest_intro": "Để tránh quá nhiều email, các thông báo sau được gộp lại:",
        "footer": (
            "Email tự động từ Trung tâm giám sát an toàn thông tin (SOC). Không trả lời email này."
        ),
        "time_zone": "giờ Việt Nam",
    },
    Language.EN: {
        "event.new": "New incident",
        "event.severity_raised": "Severity raised",
        "event.escalation": "Escalation (not acknowledged)",
        "event.resolved": "Resolved",
        "event.communes_added": "More communes affected",
        "event.reopened": "Reopened (the failure goes on)",
        "status.new": "New",
        "status.acknowledged": "Acknowledged",
        "status.investigating": "Investigating",
        "status.resolved": "Resolved",
        "status.false_positive": "False positive",
        "severity.informational": "Informational",
        "severity.low": "Low",
        "severity.medium": "Medium",
        "severity.high": "High",
        "severity.critical": "Critical",
        "what": "What happened",
        "where": "Where",
        "province": "Province",
        "wards": "Communes/wards",
        "all_wards": "whole province",
        "service": "System",
        "since": "Since",
        "last_seen": "Last seen",
        "severity": "Severity",
        "status": "Status",
        "evidence": "Evidence",
        "alerts": "Alerts",
        "events": "Events",
        "error_codes": "Top error codes",
        "samples": "Sample events (verbatim from the logs)",
        "first_steps": "What to do first",
        "open": "Open the incident in the dashboard",
        "escalation_note": "Nobody acknowledged this incident in time; it is escalated to you.",
        "resolved_note": "The incident was marked resolved. No action is needed.",
        "digest": "Incident digest",
        "digest_intro": "To avoid flooding your inbox, these notifications were batched:",
        "footer": "Automatic email from the Security Operations Centre (SOC). Do not reply.",
        "time_zone": "Vietnam time",
    },
}

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
    return LABELS[language][f"event.{event.value}"]


def status_label(language: Language, status: str) -> str:
    """The incident status in words; an unknown status is shown as it is (templates escape it)."""
    return LABELS[language].get(f"status.{status}", status)


def steps(key: str, language: Language) -> tuple[str, ...]:
    """The first steps for an incident kind; the generic ones for an unknown key."""
    return FIRST_STEPS.get(key, FIRST_STEPS["generic"])[language]
