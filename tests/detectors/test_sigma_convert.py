"""The query soc runs for every shipped rule is the one ``sigma convert`` prints.

Rule authors check their rules with sigma-cli (``sigma convert -t lucene -p
rules/pipeline/soc-ecs.yaml rules/``, docs/detection.md): that must be exactly what soc searches.
Correlation rules (``*.correlation.yaml``) are not compared: the Lucene backend has no
correlation method for a ``query_string`` search (sigma-cli skips them, ``*.yml`` only), and soc
searches their referenced rules' queries, which are compared here, with its own aggregations.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from detectors.sigma.compiler import load_rules
from detectors.sigma.pipeline import PIPELINE_FILE, RULES_DIR


def test_every_shipped_rule_renders_as_sigma_convert_does(tmp_path: Path) -> None:
    sigma = Path(sys.executable).with_name("sigma")
    subprocess.run(
        [str(sigma), "convert", "-t", "lucene", "-p", str(PIPELINE_FILE), "-od", str(tmp_path),
         "-ot", "{path}/{stem}.txt", str(RULES_DIR)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    converted = {
        str(path.relative_to(tmp_path).with_suffix(".yml")): path.read_text("utf-8").strip()
        for path in tmp_path.rglob("*.txt")
    }
    plain = [r for r in load_rules().rules if not r.kind.is_correlation]
    ours = {str(Path(r.path).resolve().relative_to(RULES_DIR)): r.query for r in plain}
    assert len(ours) == len(plain) >= 10
    assert ours == converted
