"""Vietnamese and English labels of the console; Vietnamese is the default.

A label missing in one language falls back to English, then to its key, so a forgotten translation
shows up as readable text instead of an error. This module must not format data (templates do).
"""

from __future__ import annotations

LANGUAGES = ("vi", "en")
DEFAULT = "vi"

_LABELS: dict[str, tuple[str, str]] = {
    # key: (vi, en)
    "app": ("Trung tâm giám sát an toàn thông tin", "Security monitoring centre"),
    "board": ("Bảng trạng thái quốc gia", "National status board"),
    "alerts": ("Hàng đợi cảnh báo", "Alert queue"),
    "incidents": ("Sự cố", "Incidents"),
    "incident": ("Sự cố", "Incident"),
    "rules": ("Luật phát hiện", "Detection rules"),
    "outbox": ("Hộp thư đi", "Outbox"),
    "durations": ("MTTA/MTTR theo tỉnh", "MTTA/MTTR per province"),
    "login": ("Đăng nhập", "Sign in"),
    "logout": ("Đăng xuất", "Sign out"),
    "username": ("Tên đăng nhập", "User name"),
    "password": ("Mật khẩu", "Password"),
    "throttled": (
        "Quá nhiều lần đăng nhập sai. Thử lại sau (giây):",
        "Too many failed sign-ins. Try again in (seconds):",
    ),
    "province": ("Tỉnh/thành phố", "Province"),
    "provinces": ("Tỉnh/thành phố", "Provinces"),
    "commune": ("Xã/phường", "Commune"),
    "communes": ("Xã/phường", "Communes"),
    "service": ("Dịch vụ", "Service"),
    "services": ("Dịch vụ", "Services"),
    "all": ("Tất cả", "All"),
    "status": ("Trạng thái", "Status"),
    "severity": ("Mức độ", "Severity"),
    "rule": ("Luật", "Rule"),
    "time": ("Thời gian", "Time"),
    "board_map": ("Bản đồ trạng thái 34 tỉnh/thành phố", "Status map of the 34 provinces"),
    "legend": ("Chú giải", "Legend"),
    "colour_GREEN": ("XANH", "GREEN"),
    "colour_YELLOW": ("VÀNG", "YELLOW"),
    "colour_RED": ("ĐỎ", "RED"),
    "communes_green": ("xã/phường xanh", "communes green"),
    "legend_green": (
        "Không có sự cố đang mở, mọi đầu dò kiểm tra đều trả lời.",
        "No open incident, every health probe answers.",
    ),
    "legend_yellow": (
        "Có sự cố đang mở (mức trung bình/thấp), một xã/phường không xanh, hoặc một đầu dò lỗi.",
        "An open incident (medium/low), a commune not green, or a failed probe.",
    ),
    "legend_red": (
        "Sự cố mức cao/nghiêm trọng đang mở cho cả tỉnh, hoặc mọi đầu dò cấp tỉnh đều lỗi.",
        "An open high/critical incident of the whole province, or all its province probes down.",
    ),
    "legend_sev_critical": (
        "C: số sự cố đang mở mức nghiêm trọng (critical)",
        "C: open critical incidents",
    ),
    "legend_sev_high": ("H: số sự cố đang mở mức cao (high)", "H: open high incidents"),
    "legend_sev_medium": (
        "M: số sự cố đang mở mức trung bình (medium)",
        "M: open medium incidents",
    ),
    "legend_sev_low": ("L: số sự cố đang mở mức thấp (low)", "L: open low incidents"),
    "legend_sev_informational": (
        "I: số sự cố đang mở mức thông tin (informational)",
        "I: open informational incidents",
    ),
    "legend_none": ("Không có sự cố đang mở", "No open incident"),
    "legend_ratio": (
        "Số xã/phường xanh trên tổng số xã/phường của tỉnh",
        "Green communes out of the province's communes",
    ),
    "legend_maintenance": (
        "Đang trong thời gian bảo trì đã khai báo",
        "Under a declared maintenance window",
    ),
    "legend_click": (
        "Bấm vào một tỉnh để xem các xã/phường và dịch vụ của tỉnh đó.",
        "Click a province to see its communes and services.",
    ),
    "queue_untriaged": ("Vừa phát hiện, chưa xử lý", "Just fired, not yet triaged"),
    "queue_all": ("Tất cả cảnh báo", "All alerts"),
    "queue_note": (
        "Mỗi cảnh báo được gom vào một sự cố sau vài giây; gom vào sự cố chưa phải là đã xử lý.",
        "Each alert joins an incident within seconds; joining an incident is not a verdict.",
    ),
    "just_fired": ("mới", "new"),
    "not_grouped": ("chưa gom", "not grouped yet"),
    "select": ("chọn", "select"),
    "alert_status_new": ("chưa xử lý", "not triaged"),
    "alert_status_acknowledged": ("đã xác nhận", "acknowledged"),
    "alert_status_false_positive": ("cảnh báo sai", "false positive"),
    "alert_status_attached": ("đã gom, chưa xử lý", "grouped, not triaged"),
    "tz_vn": ("Giờ Việt Nam (UTC+7)", "Vietnam time (UTC+7)"),
    "tz_utc": ("Giờ UTC", "UTC"),
    "tz_switch_hint": (
        "Chọn múi giờ hiển thị; múi giờ còn lại hiện khi rê chuột lên thời gian",
        "Choose the time zone shown; hover a time to see the other one",
    ),
    "title": ("Tiêu đề", "Title"),
    "open_incidents": ("Sự cố đang mở", "Open incidents"),
    "probes_down": ("Thăm dò lỗi", "Probes down"),
    "maintenance": ("Bảo trì", "Maintenance"),
    "green_ratio": ("Tỉ lệ xanh", "Green share"),
    "filter": ("Lọc", "Filter"),
    "acknowledge": ("Xác nhận", "Acknowledge"),
    "false_positive": ("Báo động giả", "False positive"),
    "attach": ("Gắn vào sự cố", "Attach to incident"),
    "incident_id": ("Mã sự cố", "Incident id"),
    "selected": ("đã chọn", "selected"),
    "new_alerts": ("cảnh báo mới, bấm để tải lại", "new alerts, click to reload"),
    "shortcuts": (
        "Phím tắt: j/k di chuyển, x chọn, a xác nhận, f báo động giả, r tải lại",
        "Keys: j/k move, x select, a acknowledge, f false positive, r reload",
    ),
    "summary": ("Tóm tắt", "Summary"),
    "timeline": ("Diễn biến", "Timeline"),
    "evidence": ("Bằng chứng", "Evidence"),
    "raw_events": ("Sự kiện gốc (mẫu)", "Raw events (sample)"),
    "chart": ("Chỉ số quanh sự cố", "Metric around the incident"),
    "observed": ("Quan sát", "Observed"),
    "expected": ("Kỳ vọng", "Expected"),
    "band": ("Khoảng cho phép", "Expected band"),
    "transition": ("Chuyển trạng thái", "Change status"),
    "reason": ("Lý do", "Reason"),
    "assign": ("Giao cho", "Assign to"),
    "assignee": ("Người phụ trách", "Assignee"),
    "comments": ("Bình luận", "Comments"),
    "add_comment": ("Thêm bình luận", "Add comment"),
    "emails": ("Email đã gửi", "Emails"),
    "recipient": ("Người nhận", "Recipient"),
    "subject": ("Chủ đề", "Subject"),
    "none": ("Không có", "None"),
    "count": ("Số lượng", "Count"),
    "enabled": ("Bật", "Enabled"),
    "disabled": ("Tắt", "Disabled"),
    "enable": ("Bật", "Enable"),
    "disable": ("Tắt", "Disable"),
    "last_run": ("Lần chạy cuối", "Last run"),
    "duration": ("Thời lượng", "Duration"),
    "errors": ("Lỗi", "Errors"),
    "behind": ("Cửa sổ tồn đọng", "Windows behind"),
    "upload_rule": ("Tải lên luật Sigma", "Upload a Sigma rule"),
    "file_name": ("Tên tệp", "File name"),
    "rule_text": ("Nội dung YAML", "YAML text"),
    "validate_save": ("Kiểm tra và lưu (ở trạng thái tắt)", "Validate and save (disabled)"),
    "rule_saved": ("Đã lưu luật (đang tắt)", "Rule saved (disabled)"),
    "backtest": ("Chạy thử 24 giờ", "Backtest 24 h"),
    "backtest_result": ("Kết quả chạy thử", "Backtest result"),
    "windows": ("Cửa sổ", "Windows"),
    "alerts_day": ("Cảnh báo/24 giờ", "Alerts/24 h"),
    "fp_rate": ("Tỉ lệ báo động giả", "False-positive rate"),
    "exception": ("Ngoại lệ", "Exception"),
    "until": ("đến", "until"),
    "days": ("ngày", "days"),
    "alerts_n": ("Cảnh báo", "Alerts"),
    "attempts": ("Số lần thử", "Attempts"),
    "last_error": ("Lỗi cuối", "Last error"),
    "mtta": ("MTTA (phút)", "MTTA (min)"),
    "mttr": ("MTTR (phút)", "MTTR (min)"),
    "back": ("Quay lại", "Back"),
    "done": ("Đã thực hiện", "Done"),
    "error": ("Lỗi", "Error"),
    "not_found": ("Không tìm thấy", "Not found"),
    "signed_in_as": ("Đăng nhập với", "Signed in as"),
    "apply": ("Áp dụng", "Apply"),
    "alert_count": ("Số cảnh báo", "Alerts"),
    "first_seen": ("Thấy lần đầu", "First seen"),
    "last_seen": ("Thấy lần cuối", "Last seen"),
    "actor": ("Người thực hiện", "Actor"),
    "action": ("Hành động", "Action"),
    "detail": ("Chi tiết", "Detail"),
    "open_only": ("Chỉ sự cố đang mở", "Open only"),
    "status_colours_note": (
        "Màu trạng thái tính trên mọi dịch vụ; số sự cố theo bộ lọc dịch vụ.",
        "Colours cover every service; incident counts follow the service filter.",
    ),
}


def label(key: str, lang: str) -> str:
    """The label of ``key`` in ``lang`` (``vi`` or ``en``)."""
    pair = _LABELS.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "vi" else pair[1]


def pick(lang: str | None) -> str:
    return lang if lang in LANGUAGES else DEFAULT
