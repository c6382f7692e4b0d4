#!/usr/bin/env python3
"""Checks what promtool does not: the Grafana dashboards and the alerts' runbook links.

    python3 deploy/scripts/check-observability.py

- Every deploy/grafana/dashboards/*.json is JSON with a unique `uid` and panel ids unique within it,
  and every panel, query and template variable reads the Prometheus data source by the uid that
  deploy/grafana/provisioning/datasources/ provisions (a dashboard naming another uid shows "data
  source not found" on every panel).
- Every alert of deploy/prometheus/rules/*.yml has a `severity` label (critical or warning), a
  summary, a description and a runbook_url that is a section of deploy/README.md (the runbook),
  and every link of the runbook to one of its own sections leads somewhere.

`just check-deploy` runs it. PyYAML comes with cfn-lint, which check-deploy needs anyway. Whether
the metrics they name exist is gateway/tests/api/metrics_catalogue.rs's job (it needs the stack).
"""

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy/grafana/dashboards"
DATASOURCES = ROOT / "deploy/grafana/provisioning/datasources"
RULES = ROOT / "deploy/prometheus/rules"
RUNBOOK = ROOT / "deploy/README.md"
RUNBOOK_URL = "https://github.com/ordo-dev/ordo/blob/main/deploy/README.md#"
SEVERITIES = {"critical", "warning"}

errors: list[str] = []


def fail(where: Path, message: str) -> None:
    errors.append(f"{where.relative_to(ROOT)}: {message}")


def prometheus_uid() -> str | None:
    """The uid of the one provisioned data source of type prometheus."""
    uids = []
    for path in sorted(DATASOURCES.glob("*.yaml")):
        for source in (yaml.safe_load(path.read_text()) or {}).get("datasources", []):
            if source.get("type") == "prometheus":
                uids.append(source.get("uid"))
    if len(uids) != 1 or not uids[0]:
        errors.append(f"{DATASOURCES.relative_to(ROOT)}: expected one prometheus data source with a uid, found {uids}")
        return None
    return uids[0]


def panels(container: dict):
    """Every panel, including those inside collapsed rows."""
    for panel in container.get("panels", []):
        yield panel
        yield from panels(panel)


def check_dashboards(uid: str) -> None:
    seen_uids: dict[str, Path] = {}
    files = sorted(DASHBOARDS.glob("*.json"))
    if not files:
        errors.append(f"{DASHBOARDS.relative_to(ROOT)}: no dashboards")
    for path in files:
        try:
            board = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            fail(path, f"not JSON: {error}")
            continue
        if not board.get("uid") or not board.get("title"):
            fail(path, "needs a uid and a title")
        elif board["uid"] in seen_uids:
            fail(path, f"uid {board['uid']} is also {seen_uids[board['uid']].name}'s")
        else:
            seen_uids[board["uid"]] = path
        ids = set()
        for panel in panels(board):
            name = f"panel {panel.get('id')} ({panel.get('title')!r})"
            if panel.get("id") in ids:
                fail(path, f"{name}: id used twice")
            ids.add(panel.get("id"))
            if panel.get("type") == "row":
                continue
            if (panel.get("datasource") or {}).get("uid") != uid:
                fail(path, f"{name}: datasource {panel.get('datasource')} is not uid {uid!r}")
            if not panel.get("targets"):
                fail(path, f"{name}: no query")
            for target in panel.get("targets", []):
                if (target.get("datasource") or {}).get("uid") != uid:
                    fail(path, f"{name}: query {target.get('refId')} reads {target.get('datasource')}, not uid {uid!r}")
                if not target.get("expr"):
                    fail(path, f"{name}: query {target.get('refId')} has no expression")
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("type") == "query" and (variable.get("datasource") or {}).get("uid") != uid:
                fail(path, f"variable {variable.get('name')}: datasource is not uid {uid!r}")


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    found = set()
    for line in markdown.splitlines():
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            text = re.sub(r"[`*_]", "", heading.group(1).strip()).lower()
            found.add(re.sub(r"[^a-z0-9 -]", "", text).replace(" ", "-"))
    return found


def check_rules() -> None:
    sections = anchors(RUNBOOK.read_text()) if RUNBOOK.exists() else set()
    alerts = 0
    for path in sorted(RULES.glob("*.yml")):
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", []):
            for rule in group.get("rules", []):
                if "alert" not in rule:
                    continue
                alerts += 1
                name = rule["alert"]
                labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
                if labels.get("severity") not in SEVERITIES:
                    fail(path, f"{name}: severity {labels.get('severity')!r} is not one of {sorted(SEVERITIES)}")
                for key in ("summary", "description", "runbook_url"):
                    if not annotations.get(key):
                        fail(path, f"{name}: no {key} annotation")
                url = annotations.get("runbook_url", "")
                if url and not url.startswith(RUNBOOK_URL):
                    fail(path, f"{name}: runbook_url {url} is not a section of deploy/README.md")
                elif url and url.removeprefix(RUNBOOK_URL) not in sections:
                    fail(path, f"{name}: deploy/README.md has no section #{url.removeprefix(RUNBOOK_URL)}")
    if not alerts:
        errors.append(f"{RULES.relative_to(ROOT)}: no alerts")
    for link in re.findall(r"\]\(#([^)]+)\)", RUNBOOK.read_text() if RUNBOOK.exists() else ""):
        if link not in sections:
            fail(RUNBOOK, f"link to #{link}, which is no section")


def main() -> int:
    uid = prometheus_uid()
    if uid:
        check_dashboards(uid)
    check_rules()
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        return 1
    print(f"dashboards and alert rules: ok ({len(list(DASHBOARDS.glob('*.json')))} dashboards, data source uid {uid!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
