"""Trained anomaly models on disk: ``<var_dir>/models/anomaly-v<version>-<trained>.json``.

A model is plain numbers, so it is stored as JSON rather than a pickle: loading a file can never
run code, and an administrator can read what the model learnt. Every file carries its format
version; a file of another version is refused with :class:`~soc.errors.ModelVersionError` (retrain
rather than guess). Writes go to a temporary file renamed into place, so a crash never leaves half
a model. This module must not talk to Elasticsearch.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from detectors.anomaly.baseline.model import MODEL_VERSION, Baseline, Model, SyncJob
from detectors.anomaly.features import Key
from detectors.base import iso
from soc import timeutil
from soc.errors import ModelNotFoundError, ModelVersionError

FORMAT = "soc-anomaly-model"


def models_dir(var_dir: Path) -> Path:
    return var_dir / "models"


def _parse(text: str) -> datetime:
    return timeutil.parse(text)


def to_dict(model: Model) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": model.version,
        "trained_at": iso(model.trained_at),
        "start": iso(model.start),
        "end": iso(model.end),
        "shapes": {s: list(v) for s, v in model.shapes.items()},
        "priors": model.priors,
        "peers": model.peers,
        "probes": {key.text(): list(counts) for key, counts in model.probes.items()},
        "probe_share": model.probe_share,
        "sync": {"dossiers": model.sync_dossiers, "unsynced": model.sync_unsynced},
        "sync_jobs": {
            province: {
                "runs": job.runs,
                "per_hour": job.per_hour,
                "missed": job.missed,
                "collectors": list(job.collectors),
            }
            for province, job in model.sync_jobs.items()
        },
        "sync_failures": model.sync_failures,
        "sync_failure_share": model.sync_failure_share,
        "covered": list(model.covered),
        "baselines": {
            key.text(): {
                "level": b.level,
                "hours": b.hours,
                "ratios": b.ratios,
                "p95_ms": b.p95_ms,
                "p99_ms": b.p99_ms,
                "slow_ms": b.slow_ms,
                "slow_shares": list(b.slow_shares),
                "rung_shares": list(b.rung_shares),
                "collectors": list(b.collectors),
                "dispersion": b.dispersion,
                "clump": b.clump,
            }
            for key, b in model.baselines.items()
        },
    }


def from_dict(data: dict[str, Any], where: str) -> Model:
    if data.get("format") != FORMAT:
        raise ModelVersionError(f"{where}: not a soc anomaly model (format {data.get('format')!r})")
    version = data.get("version")
    if version != MODEL_VERSION:
        raise ModelVersionError(
            f"{where}: model format version {version!r}, but this soc reads version "
            f"{MODEL_VERSION}; retrain it with `soc anomaly train`"
        )
    try:
        baselines = {
            Key.parse(text): Baseline(
                level=float(b["level"]),
                hours=int(b["hours"]),
                ratios={k: float(v) for k, v in b["ratios"].items()},
                p95_ms=b["p95_ms"],
                p99_ms=b["p99_ms"],
                slow_ms=b["slow_ms"],
                slow_shares=tuple(float(x) for x in b["slow_shares"]),
                # Saved before every rung's share was kept: the latency test counts the tail only.
                rung_shares=tuple(float(x) for x in b.get("rung_shares", ())),
                collectors=tuple(b["collectors"]),
                dispersion=float(b["dispersion"]),
                # Saved before clumps were counted: its dispersion is as it was trained.
                clump=float(b.get("clump", 1.0)),
            )
            for text, b in data["baselines"].items()
        }
        return Model(
            version=MODEL_VERSION,
            trained_at=_parse(data["trained_at"]),
            start=_parse(data["start"]),
            end=_parse(data["end"]),
            shapes={s: tuple(float(x) for x in v) for s, v in data["shapes"].items()},
            baselines=baselines,
            priors=data["priors"],
            peers=data["peers"],
            probes={Key.parse(t): (int(c[0]), int(c[1])) for t, c in data["probes"].items()},
            probe_share=float(data["probe_share"]),
            sync_dossiers=int(data["sync"]["dossiers"]),
            sync_unsynced=int(data["sync"]["unsynced"]),
            sync_jobs={
                province: SyncJob(
                    runs=int(j["runs"]),
                    per_hour=float(j["per_hour"]),
                    missed=int(j["missed"]),
                    collectors=tuple(j["collectors"]),
                )
                for province, j in data["sync_jobs"].items()
            },
            sync_failures={k: int(v) for k, v in data["sync_failures"].items()},
            sync_failure_share=float(data["sync_failure_share"]),
            # Saved before covered hours were recorded: every hour counts as seen.
            covered=tuple(bool(x) for x in data.get("covered", ())),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelVersionError(f"{where}: damaged model file ({exc!r}); retrain it") from None


def save(model: Model, var_dir: Path) -> Path:
    """Write the model next to the earlier ones and return its path."""
    folder = models_dir(var_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = model.trained_at.strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"anomaly-v{model.version}-{stamp}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(to_dict(model)))
    os.replace(tmp, path)
    return path


def load(path: Path) -> Model:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ModelNotFoundError(f"{path}: no such model file") from None
    except orjson.JSONDecodeError as exc:
        raise ModelVersionError(f"{path}: not a model file ({exc})") from None
    if not isinstance(data, dict):
        raise ModelVersionError(f"{path}: not a soc anomaly model")
    return from_dict(data, str(path))


def latest(var_dir: Path) -> Path:
    """The most recently trained model file (of any version, so an old one fails loudly)."""
    folder = models_dir(var_dir)
    found = sorted(folder.glob("anomaly-v*.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise ModelNotFoundError(
            f"no trained anomaly model in {folder}; train one with `soc anomaly train`"
        )
    return found[-1]


def load_latest(var_dir: Path) -> Model:
    return load(latest(var_dir))
