"""Markdown for ``bench/e2e_drills.py``'s result (kept apart so the runner stays readable)."""

from __future__ import annotations

from typing import Any


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _by_kind(injections: list[dict[str, Any]], stage: str = "incident_s") -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for i in injections:
        values = out.setdefault(i["kind"], [])
        if i.get(stage) is not None:
            values.append(float(i[stage]))
    return out


def _p95(values: list[float]) -> float | None:
    ordered = sorted(values)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)] if ordered else None


def _mails_section(r: dict[str, Any]) -> list[str]:
    m = r.get("mails")
    if not m:
        return []
    lines = ["", "## Emails per incident", "",
             f"{m['scenarios']} scenarios: **{m['incidents_per_scenario']:.2f} incidents per "
             f"scenario** (goal 1: one cause, one incident, whichever detectors saw it), "
             f"**{m['emails_per_incident']:.2f} \"new\" emails per incident and recipient** "
             "(goal 1.0 on open). Recipients of the demo routes (`config/demo-routes.yaml`): the "
             "province's IT, and the national SOC's copy of high and critical ones.", "",
             "| scenario | incidents | new emails per recipient |",
             "| --- | ---: | --- |"]  # fmt: skip
    for row in m["by_scenario"]:
        per = ", ".join(f"{k}: {v}" for k, v in sorted(row["new_emails"].items())) or "-"
        lines.append(f"| {row['scenario']} | {row['incidents']} | {per} |")
    return lines


def _median(values: list[float]) -> float | None:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else None


def e2e_markdown(r: dict[str, Any]) -> str:
    c, lat, fp = r["conditions"], r["latency"], r["footprint"]
    iv = c["intervals"]
    lines = [
        "# End to end: latency, fault drills, footprint",
        "",
        f"Run {r['date']} on {r['machine']}, command `.venv/bin/python bench/e2e_drills.py`"
        f" ({c['wall_s'] / 60:.0f} min). `soc demo` as a subprocess on its own Elasticsearch node"
        f" (heap {c['es_heap']}), live traffic at scale {c['scale']:g} = "
        f"{c['events_per_s']:.1f} events/s (log files read by the collector), a scenario every "
        f"{c['scenario_every_s']:g} s.",
        "",
        f"Intervals: rule windows {iv['rule_window_s']:g} s, `soc detect` tick "
        f"{iv['detect_tick_s']:g} s, settle {iv['detect_settle_s']:g} s, grouping/notify tick "
        f"{iv['pipeline_tick_s']:g} s, collector file poll {iv['file_poll_s']:g} s and flush "
        f"{iv['collector_flush_s']:g} s, probes every {iv.get('probe_interval_s', 60):g} s "
        f"(healthy ones reported every {iv.get('probe_report_every_s', 0):g} s), early firing "
        f"{'on' if iv.get('detect_early') else 'off'} (all defaults); email retry base "
        f"{c['retry_base_s']} s.",
        "",
        "## Latency from a scenario's first event",
        "",
        f"{lat['injections']} injections.",
        "",
        "| stage | reached | p50 | p95 | max |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for stage in ("alert", "incident", "email"):
        s = lat[stage]
        lines.append(f"| {stage} | {s['n']} | {_s(s['p50'])} | {_s(s['p95'])} | {_s(s['max'])} |")
    lines += ["", "Times are when the bench first saw each stage (it polls every 2 s); t = 0 is "
              "the scenario's start in the simulator's labels, when it writes its first event.",
              "", "| scenario | rule that fired first | alert written | alert seen | incident "
              "seen | email sent |", "| --- | --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for i in r.get("injections", []):
        lines.append(
            f"| {i['scenario']} | {i['rule'] or '-'} | {_s(i['alert_created_s'])} | "
            f"{_s(i['alert_s'])} | {_s(i['incident_s'])} | {_s(i['email_sent_s'])} |"
        )
    lines += ["", "By scenario kind (incident seen, seconds after the first event):", "",
              "| kind | injections | p50 | max |", "| --- | ---: | ---: | ---: |"]  # fmt: skip
    for kind, values in _by_kind(r.get("injections", [])).items():
        lines.append(f"| {kind} | {len(values)} | {_s(_median(values))} | "
                     f"{_s(max(values, default=None))} |")  # fmt: skip
    lines += ["", "Event → email by scenario kind (email sent, seconds after the first event):",
              "", "| kind | injections | p50 | p95 | max |",
              "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for kind, values in _by_kind(r.get("injections", []), "email_sent_s").items():
        lines.append(f"| {kind} | {len(values)} | {_s(_median(values))} | {_s(_p95(values))} | "
                     f"{_s(max(values, default=None))} |")  # fmt: skip
    lines += _mails_section(r)
    lines += ["", "Goal: p95 to incident under 30 s at the default intervals.", "",
              "## Fault drills", "",
              "| drill | scenarios during | missed | without email | verdict |",
              "| --- | ---: | ---: | ---: | --- |"]  # fmt: skip
    for d in r["drills"]:
        lines.append(f"| {d['drill']} | {d['scenarios_during']} | {len(d['missed'])} | "
                     f"{len(d['without_email'])} | {d['verdict']} |")  # fmt: skip
    ev, du = r["events"], r["duplicates"]
    lines += [
        "",
        f"- **no event lost** (whole run, all drills): {ev['lines_written']:,} lines written by the"
        f" simulator, {ev['events_stored']:,} events stored, {ev['dead_letters']} dead letters:"
        f" **{ev['verdict']}**",
        f"- **no duplicate**: {du['alerts']} alerts ({du['alert_ids_twice']} ids twice), "
        f"{du['incidents']} incidents, {du['emails_sent']} emails sent, {du['emails_caught']} "
        f"caught by the sink ({du['message_ids_twice']} Message-IDs twice), "
        f"{du['outbox_not_sent']} not sent at the end: **{du['verdict']}**",
        f"- `soc demo` exit code after SIGINT: {r['demo_exit_code']}",
        "",
        "## Footprint",
        "",
        "| process | peak RSS (sampled every 2 s, with its descendants) | VmHWM at the end |",
        "| --- | ---: | ---: |",
    ]
    for name, mib in sorted(fp["peak_rss_mib"].items(), key=lambda kv: -kv[1]):
        hwm = fp["vmhwm_mib"].get(name)
        lines.append(f"| {name} | {mib:.0f} MiB | {'-' if hwm is None else f'{hwm:.0f} MiB'} |")
    lines += [
        "",
        f"- peak of the sum over all processes: **{fp['peak_total_mib']:.0f} MiB** (goal: 4 GiB)",
        f"- Elasticsearch heap in use: peak {fp['es_heap_peak_mib']:.0f} MiB of "
        f"{fp['es_heap_max_mib']:.0f} MiB",
        "",
    ]
    return "\n".join(lines)
